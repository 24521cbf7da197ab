//! The report as scib-metrics' results table (text), delimited text (CSV, TSV), JSON, the
//! per-cell LISI table, the notes under the table and the stage times.

use diffbio_metrics::{Metric, SkipReason, METRICS};

use crate::score::Report;

/// The metric columns any embedding of the report has, in scib-metrics' order.
fn columns(report: &Report) -> Vec<&'static Metric> {
    METRICS
        .iter()
        .filter(|m| report.rows.iter().any(|r| m.value(&r.scores).is_some()))
        .collect()
}

/// An object keyed by embedding name; each holds its computed metrics by snake_case name,
/// `kbet_per_label` (each cell type by name: its cells and acceptance rate, `null` when
/// skipped), `neighbours` (the graph used), `skipped` (when any: each left-out metric's
/// `metric` and `reason`, with `needs` and `has` when the graph had too few neighbours),
/// `left_out` (when any: the metrics not computed by choice, `--skip`),
/// `min_max_scaled: true` when scaled, and `timings` (stage → wall seconds) when shown.
pub fn to_json(report: &Report) -> String {
    use serde_json::{json, Map, Value};
    let rows: Map<String, Value> = report
        .rows
        .iter()
        .map(|r| {
            let mut row: Map<String, Value> = r
                .scores
                .entries()
                .into_iter()
                .map(|(metric, value)| (metric.to_string(), value.into()))
                .collect();
            if !r.scores.kbet_per_label.is_empty() {
                let per_label = r.scores.kbet_per_label.iter().map(|l| {
                    let name = report.label_names.get(l.label as usize);
                    let name = name.cloned().unwrap_or_else(|| l.label.to_string());
                    (name, json!({"cells": l.cells, "acceptance": l.acceptance}))
                });
                row.insert(
                    "kbet_per_label".into(),
                    per_label.collect::<Map<_, _>>().into(),
                );
            }
            row.insert("neighbours".into(), r.neighbours.clone().into());
            if !r.scores.skipped.is_empty() {
                let skipped = r.scores.skipped.iter().map(|s| {
                    let mut entry = json!({"metric": s.metric, "reason": s.reason.to_string()});
                    if let SkipReason::TooFewNeighbours { needs, has } = s.reason {
                        entry["needs"] = needs.into();
                        entry["has"] = has.into();
                    }
                    entry
                });
                row.insert("skipped".into(), skipped.collect());
            }
            let left_out = r.scores.left_out.names();
            if !left_out.is_empty() {
                row.insert("left_out".into(), left_out.into());
            }
            if report.show_timings {
                let timings = r
                    .timings
                    .iter()
                    .map(|&(stage, t)| (stage.to_string(), t.into()));
                row.insert("timings".into(), timings.collect::<Map<_, _>>().into());
            }
            if report.scaled {
                row.insert("min_max_scaled".into(), true.into());
            }
            (r.name.clone(), Value::Object(row))
        })
        .collect();
    Value::Object(rows).to_string()
}

/// scib-metrics' results table: one row per embedding, a column per metric (its title),
/// values to 4 decimals, `-` where not computed; then the neighbour graph used.
pub fn to_table(report: &Report) -> String {
    let columns = columns(report);
    let name_width = report
        .rows
        .iter()
        .map(|r| r.name.chars().count())
        .chain([9])
        .max()
        .unwrap_or(9);
    let mut out = format!("{:<name_width$}", "Embedding");
    for metric in &columns {
        out += &format!("  {:>w$}", metric.title, w = metric.title.len().max(6));
    }
    out.push('\n');
    for row in &report.rows {
        out += &format!("{:<name_width$}", row.name);
        for metric in &columns {
            let cell = (metric.value(&row.scores)).map_or("-".into(), |v| format!("{v:.4}"));
            out += &format!("  {cell:>w$}", w = metric.title.len().max(6));
        }
        out.push('\n');
    }
    out.push('\n');
    out += &notes(report);
    out
}

/// One header line of the metric titles, then a row per embedding, fields separated by
/// `separator` (values in full precision, empty where not computed).
pub fn to_delimited(report: &Report, separator: char) -> String {
    let columns = columns(report);
    let quote = |field: &str| {
        if field.contains([separator, '"', '\n']) {
            format!("\"{}\"", field.replace('"', "\"\""))
        } else {
            field.to_string()
        }
    };
    let mut lines = vec![std::iter::once("Embedding")
        .chain(columns.iter().map(|m| m.title))
        .map(quote)
        .collect::<Vec<_>>()
        .join(&separator.to_string())];
    for row in &report.rows {
        let value = |m: &&Metric| (m.value(&row.scores)).map_or(String::new(), |v| v.to_string());
        let fields = std::iter::once(quote(&row.name)).chain(columns.iter().map(value));
        lines.push(fields.collect::<Vec<_>>().join(&separator.to_string()));
    }
    lines.join("\n") + "\n"
}

/// Each cell's LISI, tab-separated: a header (`cell`, then `EMBEDDING:batch_lisi` and
/// `EMBEDDING:label_lisi` for every embedding that has them), then one line per cell in
/// input order (`cell` = its row, from 0): what iLISI and cLISI summarise, per cell.
pub fn to_per_cell_tsv(report: &Report) -> String {
    let columns: Vec<(String, &[f64])> = (report.rows.iter())
        .flat_map(|row| {
            [
                ("batch_lisi", &row.scores.batch_lisi_per_cell),
                ("label_lisi", &row.scores.label_lisi_per_cell),
            ]
            .into_iter()
            .filter(|(_, values)| !values.is_empty())
            .map(|(what, values)| (format!("{}:{what}", row.name), values.as_slice()))
        })
        .collect();
    let n = columns.first().map_or(0, |(_, values)| values.len());
    let mut out = std::iter::once("cell")
        .chain(columns.iter().map(|(name, _)| name.as_str()))
        .collect::<Vec<_>>()
        .join("\t");
    out.push('\n');
    for cell in 0..n {
        out += &cell.to_string();
        for (_, values) in &columns {
            out += &format!("\t{}", values[cell]);
        }
        out.push('\n');
    }
    out
}

/// The lines under the table: the graphs used, what they left out, the scaling.
pub fn notes(report: &Report) -> String {
    let mut notes = String::new();
    let shared = report
        .rows
        .windows(2)
        .all(|w| w[0].neighbours == w[1].neighbours);
    for (i, row) in report.rows.iter().enumerate() {
        if !shared {
            notes += &format!("neighbours of {}: {}\n", row.name, row.neighbours);
        } else if i == 0 {
            notes += &format!("neighbours: {}\n", row.neighbours);
        }
        for skipped in &row.scores.skipped {
            notes += &format!("{}: skipped {skipped}\n", row.name);
        }
    }
    if let Some(row) = report.rows.first() {
        let left_out = row.scores.left_out.names();
        if !left_out.is_empty() {
            notes += &format!("left out (--skip): {}\n", left_out.join(", "));
        }
    }
    if report.scaled {
        notes += "min-max scaled across the embeddings (scib-metrics' min_max_scale=True)\n";
    }
    notes
}

/// Each row's stage times, a line per stage and the total, when [`Report::show_timings`].
pub fn timings_table(report: &Report) -> String {
    if !report.show_timings {
        return String::new();
    }
    let width = (report.rows.iter().flat_map(|r| &r.timings))
        .map(|(stage, _)| stage.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for row in &report.rows {
        out += &format!("stage times of {} (wall seconds):\n", row.name);
        for (stage, seconds) in &row.timings {
            out += &format!("  {stage:<width$}  {seconds:>9.3}\n");
        }
        let total: f64 = row.timings.iter().map(|(_, t)| t).sum();
        out += &format!("  {:<width$}  {total:>9.3}\n", "total");
    }
    out
}
