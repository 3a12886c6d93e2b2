#!/usr/bin/env bash
# Installs what arrow-wgpu's tests and examples need: a Vulkan loader and, where no GPU
# driver is present, Mesa's software drivers (llvmpipe for Vulkan and GL).
set -euo pipefail
have_vulkan_adapter() {
    command -v vulkaninfo >/dev/null 2>&1 && vulkaninfo --summary 2>/dev/null | grep -q deviceName
}
if ! have_vulkan_adapter; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 vulkan-tools libegl1 libegl-mesa0 libgl1-mesa-dri >/dev/null
fi
vulkaninfo --summary 2>/dev/null | grep -E "deviceName|driverName" || echo "warning: still no Vulkan adapter"
