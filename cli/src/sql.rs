//! SQL text to the library's [`Expr`], [`Agg`] and [`SortKey`], parsed by sqlparser.
//!
//! Only what the library can evaluate is accepted: columns, numeric and boolean literals,
//! `DATE 'yyyy-mm-dd'`, `+ - * /`, comparisons, `AND`/`OR`/`NOT`, `IS [NOT] NULL`,
//! `[NOT] BETWEEN`, `[NOT] IN (list)` and parentheses. Anything else (functions, strings,
//! `LIKE`, `CASE`, ...) is an error that names the part it can't take. Type errors are left
//! to the library's planner, which reports them with the column and the types.

use anyhow::{anyhow, bail, Context, Result};
use arrow::datatypes::Schema;
use arrow_wgpu::{col, lit, Agg, Expr, ScalarValue, SortKey};
use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, DuplicateTreatment, FunctionArg, FunctionArgExpr, FunctionArguments,
    SelectItem, UnaryOperator, Value,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

/// Parses `text` with `parse`, which must consume all of it.
fn parse_all<T>(
    what: &str,
    text: &str,
    parse: impl FnOnce(
        &mut Parser,
    ) -> std::result::Result<T, datafusion::sql::sqlparser::parser::ParserError>,
) -> Result<T> {
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(text)
        .with_context(|| format!("{what}: can't parse `{text}`"))?;
    let out = parse(&mut parser)
        .and_then(|v| parser.expect_token(&Token::EOF).map(|_| v))
        .with_context(|| format!("{what}: can't parse `{text}`"))?;
    Ok(out)
}

/// A predicate (`--filter`) as the library's expression (the first half of
/// [`predicate_with_sql`]).
#[cfg(test)]
pub fn parse_predicate(text: &str, schema: &Schema) -> Result<Expr> {
    predicate_with_sql(text, schema).map(|(expr, _)| expr)
}

/// An aggregate list (`--agg`): `count(*), sum(x) AS total, mean(y) FILTER (WHERE y > 0)`.
pub fn parse_aggs(text: &str, schema: &Schema) -> Result<Vec<Agg>> {
    let items = parse_all("--agg", text, |p| {
        p.parse_comma_separated(Parser::parse_select_item)
    })?;
    items
        .iter()
        .map(|item| {
            let (expr, alias) = match item {
                SelectItem::UnnamedExpr(e) => (e, None),
                SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.value.clone())),
                other => bail!("`{other}` is not an aggregate"),
            };
            let agg = to_agg(expr, schema)?;
            Ok(match alias {
                Some(a) => agg.alias(a),
                None => agg,
            })
        })
        .collect::<Result<_>>()
        .with_context(|| format!("--agg `{text}`"))
}

/// Sort keys (`--sort`): `a desc nulls last, b`. Without `NULLS FIRST/LAST`, nulls go as
/// SQL (PostgreSQL, DataFusion) puts them: last ascending, first descending.
pub fn parse_sort(text: &str, schema: &Schema) -> Result<Vec<SortKey>> {
    let items = parse_all("--sort", text, |p| {
        p.parse_comma_separated(Parser::parse_order_by_expr)
    })?;
    items
        .iter()
        .map(|item| {
            let ast::Expr::Identifier(ident) = &item.expr else {
                bail!(
                    "--sort `{text}`: `{}` is not a column name (sort keys are columns)",
                    item.expr
                );
            };
            let descending = item.options.asc == Some(false);
            let nulls_first = item.options.nulls_first.unwrap_or(descending);
            let key = if descending {
                SortKey::desc(column_name(ident, schema))
            } else {
                SortKey::asc(column_name(ident, schema))
            };
            Ok(key.nulls_first(nulls_first))
        })
        .collect()
}

/// Column names from a comma-separated flag (`--group-by`, `--distinct`), each resolved as
/// an SQL identifier would be.
/// The column names in comma-separated lists (each `--group-by`/`--distinct` given):
/// commas inside double quotes are part of a name (`"a,b",c` is two names).
pub fn split_columns(lists: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for list in lists {
        let mut current = String::new();
        let mut quoted = false;
        for ch in list.chars() {
            match ch {
                '"' => {
                    quoted = !quoted;
                    current.push(ch);
                }
                ',' if !quoted => out.push(std::mem::take(&mut current)),
                _ => current.push(ch),
            }
        }
        out.push(current);
    }
    out.retain(|n| !n.trim().is_empty());
    out
}

pub fn resolve_columns(names: &[String], schema: &Schema) -> Vec<String> {
    let names = split_columns(names);
    names
        .iter()
        .map(|n| {
            let n = n.trim();
            if schema.field_with_name(n).is_ok() {
                return n.to_string();
            }
            let unquoted = n
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .map(str::to_string);
            match unquoted {
                Some(q) => q,
                None => column_name(&ast::Ident::new(n), schema),
            }
        })
        .collect()
}

/// The column an identifier names: its exact name, or, for an unquoted identifier that
/// matches no column exactly, the one column that matches it ignoring case (SQL folds
/// unquoted names). An unknown name is returned as is, for the library to report with the
/// columns there are.
fn column_name(ident: &ast::Ident, schema: &Schema) -> String {
    if ident.quote_style.is_some() || schema.field_with_name(&ident.value).is_ok() {
        return ident.value.clone();
    }
    let matches: Vec<&str> = schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .filter(|n| n.eq_ignore_ascii_case(&ident.value))
        .collect();
    match matches.as_slice() {
        [one] => one.to_string(),
        _ => ident.value.clone(),
    }
}

fn to_expr(e: &ast::Expr, schema: &Schema) -> Result<Expr> {
    use ast::Expr as S;
    let boxed = |e: &ast::Expr| to_expr(e, schema);
    Ok(match e {
        S::Identifier(ident) => col(column_name(ident, schema)),
        S::CompoundIdentifier(_) => bail!(
            "`{}`: qualified names aren't supported (there is one table); quote a column whose name has a dot: \"a.b\"",
            e
        ),
        S::Nested(inner) => boxed(inner)?,
        S::Value(v) => Expr::Literal(literal(&v.value, false)?),
        S::TypedString(t) => Expr::Literal(typed_literal(t)?),
        S::UnaryOp { op, expr } => match (op, expr.as_ref()) {
            (UnaryOperator::Minus, S::Value(v)) => Expr::Literal(literal(&v.value, true)?),
            // -x as x * -1: an exact negation for integers (wrapping, as `0 - x`) and floats
            // (a sign flip, where `0 - x` would turn -0.0 into +0.0).
            (UnaryOperator::Minus, inner) => lit(-1) * boxed(inner)?,
            (UnaryOperator::Plus, inner) => boxed(inner)?,
            (UnaryOperator::Not, inner) => boxed(inner)?.not(),
            _ => bail!("`{e}`: the operator {op} isn't supported"),
        },
        S::BinaryOp { left, op, right } => {
            let (l, r) = (boxed(left)?, boxed(right)?);
            match op {
                BinaryOperator::Plus => l + r,
                BinaryOperator::Minus => l - r,
                BinaryOperator::Multiply => l * r,
                BinaryOperator::Divide => l / r,
                BinaryOperator::Eq => l.eq(r),
                BinaryOperator::NotEq => l.not_eq(r),
                BinaryOperator::Lt => l.lt(r),
                BinaryOperator::LtEq => l.lt_eq(r),
                BinaryOperator::Gt => l.gt(r),
                BinaryOperator::GtEq => l.gt_eq(r),
                BinaryOperator::And => l.and(r),
                BinaryOperator::Or => l.or(r),
                other => bail!("`{e}`: the operator {other} isn't supported"),
            }
        }
        S::IsNull(inner) => boxed(inner)?.is_null(),
        S::IsNotNull(inner) => boxed(inner)?.is_not_null(),
        S::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let between = boxed(expr)?.between(boxed(low)?, boxed(high)?);
            if *negated {
                between.not()
            } else {
                between
            }
        }
        S::InList {
            expr,
            list,
            negated,
        } => {
            let list = list.iter().map(boxed).collect::<Result<Vec<_>>>()?;
            let in_list = boxed(expr)?.in_list(list);
            if *negated {
                in_list.not()
            } else {
                in_list
            }
        }
        S::Function(f) => bail!(
            "`{e}`: functions aren't supported in expressions{}",
            if agg_func(&f.name.to_string()).is_some() {
                " (aggregates go in --agg)"
            } else {
                ""
            }
        ),
        other => bail!("`{other}` isn't supported in an expression"),
    })
}

/// A literal value; `negative` for a literal after a unary minus.
fn literal(v: &Value, negative: bool) -> Result<ScalarValue> {
    let sign = if negative { "-" } else { "" };
    match v {
        Value::Number(text, _) => {
            let text = format!("{sign}{text}");
            if text.contains(['.', 'e', 'E']) {
                return text
                    .parse::<f64>()
                    .map(ScalarValue::Float64)
                    .map_err(|_| anyhow!("`{text}` is not a number"));
            }
            if let Ok(v) = text.parse::<i32>() {
                Ok(ScalarValue::Int32(v))
            } else if let Ok(v) = text.parse::<i64>() {
                Ok(ScalarValue::Int64(v))
            } else if let Ok(v) = text.parse::<u64>() {
                Ok(ScalarValue::UInt64(v))
            } else {
                bail!("`{text}` doesn't fit a 64-bit integer")
            }
        }
        Value::Boolean(b) if !negative => Ok(ScalarValue::Boolean(*b)),
        Value::Null => bail!("a NULL literal isn't supported (use IS NULL / IS NOT NULL)"),
        Value::SingleQuotedString(s) if !negative => Ok(ScalarValue::Utf8(s.clone())),
        // 0x10, X'41' (hex) and B'10' (bits) are numbers or bytes, never the text of their
        // digits: refused rather than compared as strings.
        Value::HexStringLiteral(_) => {
            bail!("the hex literal `{sign}{v}` isn't supported: write the number in decimal")
        }
        Value::SingleQuotedByteStringLiteral(_) | Value::DoubleQuotedByteStringLiteral(_) => {
            bail!("the byte or bit literal `{sign}{v}` isn't supported")
        }
        v => bail!("the literal `{sign}{v}` isn't supported (strings are 'single-quoted')"),
    }
}

fn typed_literal(t: &ast::TypedString) -> Result<ScalarValue> {
    let text = t.value.value.clone().into_string();
    match (&t.data_type, text) {
        (ast::DataType::Date, Some(s)) => {
            use arrow::compute::kernels::cast_utils::Parser as _;
            arrow::datatypes::Date32Type::parse(&s)
                .map(ScalarValue::Date32)
                .ok_or_else(|| anyhow!("DATE '{s}' is not a date (yyyy-mm-dd)"))
        }
        _ => bail!("`{t}`: only DATE 'yyyy-mm-dd' typed literals are supported"),
    }
}

/// An aggregate's constructor in the library.
type MakeAgg = fn(Expr) -> Agg;

/// The aggregate a function name (case-insensitive) stands for: DataFusion's name for it
/// and the library's constructor.
fn agg_func(name: &str) -> Option<(&'static str, MakeAgg)> {
    Some(match name.to_ascii_lowercase().as_str() {
        "count" => ("count", Agg::count),
        "sum" => ("sum", Agg::sum),
        "min" => ("min", Agg::min),
        "max" => ("max", Agg::max),
        "mean" | "avg" => ("avg", Agg::mean),
        "var" | "var_samp" | "variance" => ("var_samp", Agg::var_samp),
        "var_pop" => ("var_pop", Agg::var_pop),
        "stddev" | "stddev_samp" | "std" => ("stddev_samp", Agg::stddev_samp),
        "stddev_pop" => ("stddev_pop", Agg::stddev_pop),
        _ => return None,
    })
}

/// A name as a quoted SQL identifier (`"a ""b"""`): DataFusion takes it as written.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `e` as SQL that DataFusion reads as the library reads `e`: every column named as the
/// library resolved it, quoted; every aggregate by DataFusion's name for it. Call it on
/// text [`to_expr`] / [`to_agg`] accepted, so only their subset of SQL is written.
fn resolved_sql(mut e: ast::Expr, schema: &Schema) -> String {
    let _ = ast::visit_expressions_mut(&mut e, |x| {
        match x {
            ast::Expr::Identifier(ident) => {
                *ident = ast::Ident::with_quote('"', column_name(ident, schema));
            }
            ast::Expr::Function(f) => {
                if let Some((name, _)) = agg_func(&f.name.to_string()) {
                    f.name = ast::ObjectName::from(vec![ast::Ident::new(name)]);
                }
            }
            _ => {}
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    e.to_string()
}

/// A predicate (`--filter`) as the library's expression, and as SQL for DataFusion
/// (written with resolved, quoted columns), from one parse.
pub fn predicate_with_sql(text: &str, schema: &Schema) -> Result<(Expr, String)> {
    let ast = parse_all("--filter", text, |p| p.parse_expr())?;
    let expr = to_expr(&ast, schema).with_context(|| format!("--filter `{text}`"))?;
    Ok((expr, resolved_sql(ast, schema)))
}

/// `--agg` as [`parse_aggs`] gives it, and as SQL for DataFusion, one aggregate each
/// (without its alias), written with resolved, quoted columns and DataFusion's function
/// names.
pub fn aggs_with_sql(text: &str, schema: &Schema) -> Result<(Vec<Agg>, Vec<String>)> {
    let aggs = parse_aggs(text, schema)?;
    let items = parse_all("--agg", text, |p| {
        p.parse_comma_separated(Parser::parse_select_item)
    })?;
    let sql = items
        .into_iter()
        .filter_map(|item| match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                Some(resolved_sql(e, schema))
            }
            _ => None,
        })
        .collect();
    Ok((aggs, sql))
}

/// Sort keys as an SQL `ORDER BY` list.
pub fn sort_sql(keys: &[SortKey]) -> Vec<String> {
    keys.iter()
        .map(|k| {
            format!(
                "{} {} NULLS {}",
                quote(&k.column),
                if k.options.descending { "DESC" } else { "ASC" },
                if k.options.nulls_first {
                    "FIRST"
                } else {
                    "LAST"
                }
            )
        })
        .collect()
}

fn to_agg(e: &ast::Expr, schema: &Schema) -> Result<Agg> {
    let ast::Expr::Function(f) = e else {
        bail!("`{e}` is not an aggregate (count, sum, min, max, mean, var, stddev, ...)");
    };
    let name = f.name.to_string();
    let Some((_, make)) = agg_func(&name) else {
        bail!("`{e}`: unknown aggregate {name} (count, sum, min, max, mean/avg, var/var_samp, var_pop, stddev/stddev_samp, stddev_pop)");
    };
    if f.over.is_some() {
        bail!("`{e}`: window functions aren't supported");
    }
    let FunctionArguments::List(list) = &f.args else {
        bail!("`{e}`: {name} takes one argument");
    };
    let distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
    if distinct && !name.eq_ignore_ascii_case("count") {
        bail!("`{e}`: only count takes DISTINCT");
    }
    if !list.clauses.is_empty() {
        bail!("`{e}`: clauses inside an aggregate's parentheses aren't supported");
    }
    let agg = match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] if distinct => {
            bail!("`{e}`: count(DISTINCT *) isn't supported: name the column, count(DISTINCT x)")
        }
        [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] if name.eq_ignore_ascii_case("count") => {
            Agg::count_star()
        }
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] if distinct => {
            Agg::count_distinct(to_expr(arg, schema)?)
        }
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] => make(to_expr(arg, schema)?),
        _ => bail!("`{e}`: {name} takes one argument"),
    };
    Ok(match &f.filter {
        Some(predicate) => agg.filter(to_expr(predicate, schema)?),
        None => agg,
    })
}

#[cfg(test)]
mod split_tests {
    use super::split_columns;

    #[test]
    fn commas_inside_double_quotes_are_part_of_a_name() {
        let lists = vec![r#""a,b",c"#.to_string(), "d, e".to_string()];
        assert_eq!(split_columns(&lists), vec![r#""a,b""#, "c", "d", " e"]);
    }
}

#[cfg(test)]
#[path = "sql_fuzz.rs"]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("qty", DataType::Int64, true),
            Field::new("Price", DataType::Float64, true),
            Field::new("day", DataType::Date32, true),
            Field::new("sum(x)", DataType::Int64, true),
        ])
    }

    #[test]
    fn predicates_map_to_library_expressions() {
        let s = schema();
        let e = parse_predicate(
            "qty BETWEEN 1 AND 10 AND price > -2.5 AND day >= DATE '2021-01-01' AND NOT (qty IN (3, 4)) AND qty IS NOT NULL",
            &s,
        )
        .unwrap();
        let want = col("qty")
            .between(lit(1), lit(10))
            .and(col("Price").gt(lit(-2.5)))
            .and(col("day").gt_eq(Expr::Literal(ScalarValue::Date32(18_628))))
            .and(col("qty").in_list(vec![lit(3), lit(4)]).not())
            .and(col("qty").is_not_null());
        assert_eq!(e, want);
        assert_eq!(
            parse_predicate("\"sum(x)\" * 2 <> -9223372036854775808", &s).unwrap(),
            (col("sum(x)") * lit(2)).not_eq(lit(i64::MIN))
        );
        assert_eq!(
            parse_predicate("qty IN ('a', 'it''s')", &s).unwrap(),
            col("qty").in_list(vec![lit("a"), lit("it's")])
        );
    }

    #[test]
    fn unsupported_sql_is_a_clear_error() {
        let s = schema();
        for (text, says) in [
            ("qty >", "can't parse"),
            ("upper(qty) = 1", "functions aren't supported"),
            ("qty = -'a'", "isn't supported"),
            ("qty LIKE 'a%'", "isn't supported"),
            ("qty % 2 = 0", "operator % isn't supported"),
            ("qty = 1 extra", "can't parse"),
            ("day > DATE '2021-13-01'", "not a date"),
            ("qty = 0x10", "hex literal"),
            ("qty = X'41'", "hex literal"),
            ("qty = B'10'", "literal"),
        ] {
            let err = format!("{:#}", parse_predicate(text, &s).unwrap_err());
            assert!(err.contains(says), "{text}: {err}");
        }
        let err = format!("{:#}", parse_aggs("count(DISTINCT *)", &s).unwrap_err());
        assert!(err.contains("count(DISTINCT *) isn't supported"), "{err}");
    }

    #[test]
    fn aggregates_with_aliases_and_filters() {
        let s = schema();
        let aggs = parse_aggs(
            "count(*), SUM(qty) AS total, avg(price), mean(price) FILTER (WHERE qty > 1), var(qty), stddev_pop(qty), count(DISTINCT qty)",
            &s,
        )
        .unwrap();
        let names: Vec<String> = aggs.iter().map(Agg::name).collect();
        assert_eq!(
            names,
            [
                "count(*)",
                "total",
                "avg(Price)",
                "avg(Price) FILTER (WHERE qty > 1)",
                "var(qty)",
                "stddev_pop(qty)",
                "count(DISTINCT qty)"
            ]
        );
        for bad in ["median(qty)", "qty", "sum(DISTINCT qty)", "sum(qty, qty)"] {
            assert!(parse_aggs(bad, &s).is_err(), "{bad}");
        }
    }

    #[test]
    fn sort_keys_follow_sql_null_placement() {
        let s = schema();
        let keys = parse_sort("qty desc nulls last, price, day DESC", &s).unwrap();
        assert_eq!(
            keys,
            [
                SortKey::desc("qty").nulls_first(false),
                SortKey::asc("Price").nulls_first(false),
                SortKey::desc("day").nulls_first(true),
            ]
        );
        assert!(parse_sort("qty + 1", &s).is_err());
    }
}
