//! The report's SVG charts, drawn with plotters: rows/s against rows (log-log, one line per
//! mode: arrow-wgpu's CPU path, DataFusion, the GPU resident and with transfers; the GPU's
//! crossover marked) and the time split at the largest size.

use anyhow::{anyhow, Result};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use super::{crossover, si, Mode, Op, Point};

const FONT: &str = "sans-serif";

fn color(mode: Mode) -> RGBColor {
    match mode {
        Mode::Cpu => RGBColor(31, 119, 180),
        // Brown: apart from the other lines and from the split chart's phase colours.
        Mode::DataFusion => RGBColor(140, 86, 75),
        Mode::GpuResident => RGBColor(44, 160, 44),
        Mode::GpuTransfers => RGBColor(214, 39, 40),
    }
}

fn plot_error<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing a chart: {e:?}")
}

/// Rows/s against rows for `op`, one line per mode measured, on log axes.
pub fn throughput(points: &[Point], op: Op, sizes: &[usize]) -> Result<String> {
    let mine: Vec<&Point> = points.iter().filter(|p| p.op == op).collect();
    let (min_rows, max_rows) = (
        *sizes.first().unwrap_or(&1000) as f64,
        *sizes.last().unwrap_or(&1000) as f64,
    );
    let rates = mine.iter().map(|p| p.rows_per_second());
    let (lo, hi) = rates.fold((f64::MAX, 0f64), |(lo, hi), r| (lo.min(r), hi.max(r)));
    // Headroom above the data for the verdict lines.
    let (lo, hi) = if hi > 0.0 {
        (lo / 2.0, hi * 5.0)
    } else {
        (1.0, 10.0)
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (780, 460)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}: throughput (higher is better)", op.name()),
                (FONT, 22),
            )
            .margin(14)
            .x_label_area_size(56)
            .y_label_area_size(80)
            .build_cartesian_2d(
                (min_rows / 1.25..max_rows * 1.25).log_scale(),
                (lo..hi).log_scale(),
            )
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("rows in the input (log scale)")
            .y_desc("rows per second (log scale)")
            .x_labels(8)
            .x_label_formatter(&|v| si(*v))
            .y_label_formatter(&|v| si(*v))
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 16))
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(200, 200, 200))
            .draw()
            .map_err(plot_error)?;
        for mode in Mode::ALL {
            let mut data: Vec<(f64, f64)> = mine
                .iter()
                .filter(|p| p.mode == mode)
                .map(|p| (p.rows as f64, p.rows_per_second()))
                .collect();
            if data.is_empty() {
                continue;
            }
            data.sort_by(|a, b| a.0.total_cmp(&b.0));
            let c = color(mode);
            chart
                .draw_series(LineSeries::new(data.clone(), c.stroke_width(3)))
                .map_err(plot_error)?
                .label(mode.label())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3))
                });
            chart
                .draw_series(
                    data.iter()
                        .map(|&(x, y)| Circle::new((x, y), 5, c.filled())),
                )
                .map_err(plot_error)?;
        }
        // The crossover, said in words at the top left (one line per GPU mode, or one
        // line when neither wins) and marked by a dashed line where a mode starts to win.
        let gpu_modes: Vec<Mode> = [Mode::GpuTransfers, Mode::GpuResident]
            .into_iter()
            .filter(|&m| mine.iter().any(|p| p.mode == m))
            .collect();
        let crossovers: Vec<(Mode, Option<usize>)> = gpu_modes
            .iter()
            .map(|&m| (m, crossover(points, op, m)))
            .collect();
        let lines: Vec<(String, RGBColor)> = if crossovers.iter().all(|(_, c)| c.is_none()) {
            if crossovers.is_empty() {
                Vec::new()
            } else {
                vec![(
                    format!("GPU never wins up to {} rows", si(max_rows)),
                    RGBColor(170, 20, 20),
                )]
            }
        } else {
            crossovers
                .iter()
                .map(|&(m, c)| {
                    let text = match c {
                        Some(from) => {
                            format!("GPU {}: wins from {} rows", short(m), si(from as f64))
                        }
                        None => format!("GPU {}: never wins up to {} rows", short(m), si(max_rows)),
                    };
                    (text, color(m))
                })
                .collect()
        };
        for (i, (text, c)) in lines.iter().enumerate() {
            chart
                .draw_series(std::iter::once(Text::new(
                    text.clone(),
                    (min_rows, hi / 1.5 / 1.7f64.powi(i as i32)),
                    (FONT, 18).into_font().color(c),
                )))
                .map_err(plot_error)?;
        }
        for (m, c) in &crossovers {
            if let Some(from) = c {
                let x = *from as f64;
                chart
                    .draw_series(DashedLineSeries::new(
                        vec![(x, lo), (x, hi)],
                        8,
                        6,
                        color(*m).stroke_width(2),
                    ))
                    .map_err(plot_error)?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(150, 150, 150))
            .label_font((FONT, 15))
            .draw()
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

fn short(mode: Mode) -> &'static str {
    match mode {
        Mode::Cpu => "CPU",
        Mode::DataFusion => "DataFusion",
        Mode::GpuResident => "resident",
        Mode::GpuTransfers => "with transfers",
    }
}

/// Phases of the split bars: their labels and colours.
const PHASES: [(&str, RGBColor); 5] = [
    ("upload", RGBColor(148, 103, 189)),
    ("GPU kernels", RGBColor(255, 127, 14)),
    ("download", RGBColor(23, 190, 207)),
    ("CPU work", RGBColor(31, 119, 180)),
    ("other (waits, host code)", RGBColor(190, 190, 190)),
];

/// Stacked bars: where the time of `op` at `rows` went, per mode.
pub fn split(points: &[Point], op: Op, rows: usize) -> Result<String> {
    let bars: Vec<&Point> = Mode::ALL
        .iter()
        .filter_map(|&m| {
            points
                .iter()
                .find(|p| p.op == op && p.mode == m && p.rows == rows)
        })
        .collect();
    let max_ms = bars
        .iter()
        .map(|p| p.seconds * 1e3)
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.05;
    let n = bars.len() as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (500, 460)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("time split at {} rows (lower is better)", si(rows as f64)),
                (FONT, 19),
            )
            .margin(14)
            .x_label_area_size(56)
            .y_label_area_size(110)
            // Two empty rows above the bars hold the legend.
            .build_cartesian_2d(0.0..max_ms, (0u32..n + 1).into_segmented())
            .map_err(plot_error)?;
        let labels: Vec<&'static str> = bars.iter().map(|p| short(p.mode)).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("milliseconds")
            .x_label_formatter(&|v| {
                if max_ms >= 10.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.1}")
                }
            })
            .y_labels(n as usize + 2)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels
                    .get(*i as usize)
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 16))
            .light_line_style(RGBColor(240, 240, 240))
            .draw()
            .map_err(plot_error)?;
        for (i, (label, c)) in PHASES.iter().enumerate() {
            let rects: Vec<Rectangle<(f64, SegmentValue<u32>)>> = bars
                .iter()
                .enumerate()
                .filter_map(|(bar, p)| {
                    let parts = parts(p);
                    let start: f64 = parts[..i].iter().sum();
                    let width = parts[i];
                    (width > 0.0).then(|| {
                        let mut r = Rectangle::new(
                            [
                                (start, SegmentValue::Exact(bar as u32)),
                                (start + width, SegmentValue::Exact(bar as u32 + 1)),
                            ],
                            c.filled(),
                        );
                        r.set_margin(12, 12, 0, 0);
                        r
                    })
                })
                .collect();
            if rects.is_empty() {
                continue;
            }
            let c = *c;
            chart
                .draw_series(rects)
                .map_err(plot_error)?
                .label(*label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], c.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(150, 150, 150))
            .label_font((FONT, 14))
            .draw()
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// A point's time in milliseconds per phase of [`PHASES`]; "other" is the wall time the
/// profile's phases don't cover.
fn parts(p: &Point) -> [f64; 5] {
    let [upload, kernels, download, cpu] = p.split.map(|s| s * 1e3);
    let other = (p.seconds * 1e3 - (upload + kernels + download + cpu)).max(0.0);
    [upload, kernels, download, cpu, other]
}
