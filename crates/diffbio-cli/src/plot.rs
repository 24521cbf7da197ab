//! The results table as a figure, drawn the way scib-metrics' `plot_results_table` draws
//! it: one row per embedding (best total first), a circle per metric coloured within its
//! column (PRGn, ±2.5 standard deviations around the column's mean), a bar per aggregate
//! score (YlGnBu), metrics grouped under "Bio conservation", "Batch correction" and
//! "Aggregate score". SVG needs no font (the viewer draws the text); PNG needs a TrueType
//! font (see [`register_font`]).

use std::path::Path;

use diffbio_metrics::{MetricGroup, METRICS};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::score::Report;
use diffbio_io::{Error, Result};

/// Registers [`diffbio_io::read_font`]'s font as plotters' "sans-serif"; false when there is
/// none or plotters refuses it. Bitmap text needs it.
pub fn register_font() -> bool {
    diffbio_io::read_font().is_some_and(|bytes| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
    })
}

const METHOD_WIDTH: i32 = 170;
const CIRCLE_WIDTH: i32 = 84;
const BAR_WIDTH: i32 = 96;
const HEADER: i32 = 96;
const ROW: i32 = 40;

/// One column of the figure: a metric's title (split once), its group, a value per row.
struct Column {
    title: [&'static str; 2],
    group: MetricGroup,
    values: Vec<Option<f64>>,
}

/// Draws `report` into `path` (`.svg` or `.png`).
pub fn write_plot(report: &Report, path: &Path) -> Result<()> {
    let failed = |reason: String| Error::Unwritable {
        path: path.to_path_buf(),
        reason,
    };
    let (rows, columns) = layout(report);
    let width = METHOD_WIDTH
        + columns
            .iter()
            .map(|c| {
                if c.group == MetricGroup::Aggregate {
                    BAR_WIDTH
                } else {
                    CIRCLE_WIDTH
                }
            })
            .sum::<i32>()
        + 20;
    let size = (width as u32, (HEADER + ROW * rows.len() as i32 + 16) as u32);
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => draw(
            SVGBackend::new(path, size).into_drawing_area(),
            &rows,
            &columns,
        )
        .map_err(|e| failed(e.to_string())),
        Some("png") => {
            if !register_font() {
                return Err(failed(
                    "no TrueType font for the PNG's text (set DIFFBIO_FONT, or write .svg)".into(),
                ));
            }
            draw(
                BitMapBackend::new(path, size).into_drawing_area(),
                &rows,
                &columns,
            )
            .map_err(|e| failed(e.to_string()))
        }
        _ => Err(failed("the figure must be .svg or .png".into())),
    }
}

/// The embeddings' names sorted as scib sorts them (by the total, else by the aggregate
/// present, best first), and scib's columns that any embedding has.
fn layout(report: &Report) -> (Vec<&str>, Vec<Column>) {
    let key = ["total", "batch_correction", "bio_conservation"]
        .into_iter()
        .find(|name| report.rows.iter().any(|r| r.scores.get(name).is_some()));
    let mut order: Vec<usize> = (0..report.rows.len()).collect();
    if let Some(key) = key {
        let value = |i: usize| report.rows[i].scores.get(key).unwrap_or(f64::NEG_INFINITY);
        order.sort_by(|&a, &b| value(b).total_cmp(&value(a)));
    }
    let columns = METRICS
        .iter()
        .filter(|m| m.group != MetricGroup::Additional)
        .map(|m| Column {
            title: match m.title.split_once(' ') {
                Some((first, rest)) => [first, rest],
                None => [m.title, ""],
            },
            group: m.group,
            values: order
                .iter()
                .map(|&i| m.value(&report.rows[i].scores))
                .collect(),
        })
        .filter(|c| c.values.iter().any(Option::is_some))
        .collect();
    let rows = order
        .iter()
        .map(|&i| report.rows[i].name.as_str())
        .collect();
    (rows, columns)
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    rows: &[&str],
    columns: &[Column],
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let font = |size: f64, h: HPos| {
        ("sans-serif", size)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(h, VPos::Center))
    };
    let row_y = |r: usize| HEADER + ROW * r as i32 + ROW / 2;
    root.draw(&Text::new(
        "Method",
        (12, HEADER - 18),
        font(14.0, HPos::Left),
    ))?;
    for (r, name) in rows.iter().enumerate() {
        root.draw(&Text::new(
            name.to_string(),
            (12, row_y(r)),
            font(14.0, HPos::Left),
        ))?;
    }
    let mut x = METHOD_WIDTH;
    let mut group_start = (x, columns.first().map(|c| c.group));
    for (i, column) in columns.iter().enumerate() {
        let bar = column.group == MetricGroup::Aggregate;
        let width = if bar { BAR_WIDTH } else { CIRCLE_WIDTH };
        let centre = x + width / 2;
        for (line, text) in column.title.iter().enumerate() {
            let at = (centre, HEADER - 30 + 16 * line as i32);
            root.draw(&Text::new(text.to_string(), at, font(12.0, HPos::Center)))?;
        }
        for (r, value) in column.values.iter().enumerate() {
            let Some(value) = *value else { continue };
            let label = format!("{value:.2}");
            if bar {
                let colour = ramp(&YLGNBU, value.clamp(0.0, 1.0));
                let length = ((width - 12) as f64 * value.clamp(0.0, 1.0)) as i32;
                let (top, bottom) = (row_y(r) - ROW * 9 / 20, row_y(r) + ROW * 9 / 20);
                root.draw(&Rectangle::new(
                    [(x + 4, top), (x + 4 + length, bottom)],
                    colour.filled(),
                ))?;
                let ink = contrasting(colour);
                let text = font(12.0, HPos::Left).color(&ink);
                root.draw(&Text::new(label, (x + 8, row_y(r)), text))?;
            } else {
                let colour = ramp(&PRGN, column_position(&column.values, value));
                root.draw(&Circle::new((centre, row_y(r)), 17, colour.filled()))?;
                let ink = contrasting(colour);
                let text = font(12.0, HPos::Center).color(&ink);
                root.draw(&Text::new(label, (centre, row_y(r)), text))?;
            }
        }
        x += width;
        // A group ends: its name over its columns, a rule under the name.
        if columns.get(i + 1).map(|c| c.group) != Some(column.group) {
            let name = match column.group {
                MetricGroup::BioConservation => "Bio conservation",
                MetricGroup::BatchCorrection => "Batch correction",
                MetricGroup::Aggregate => "Aggregate score",
                MetricGroup::Additional => "",
            };
            let middle = (group_start.0 + x) / 2;
            root.draw(&Text::new(name, (middle, 18), font(14.0, HPos::Center)))?;
            let rule = vec![(group_start.0 + 6, 32), (x - 6, 32)];
            root.draw(&PathElement::new(rule, BLACK.stroke_width(1)))?;
            group_start = (x, columns.get(i + 1).map(|c| c.group));
        }
    }
    let line = |y: i32| PathElement::new(vec![(8, y), (x, y)], BLACK.stroke_width(1));
    root.draw(&line(HEADER - 4))?;
    root.draw(&line(HEADER + ROW * rows.len() as i32))?;
    root.present()
}

/// Where `value` sits in its column for the colour map: scib's `normed_cmap` maps the
/// column's mean ± 2.5 standard deviations onto the map's ends.
fn column_position(values: &[Option<f64>], value: f64) -> f64 {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    let n = present.len() as f64;
    let mean = present.iter().sum::<f64>() / n;
    let sd = (present.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    if sd == 0.0 {
        return 0.5;
    }
    (0.5 + (value - mean) / (2.0 * 2.5 * sd)).clamp(0.0, 1.0)
}

/// matplotlib's PRGn and YlGnBu, sampled evenly from 0 to 1.
const PRGN: [(u8, u8, u8); 11] = [
    (0x40, 0x00, 0x4b),
    (0x76, 0x2a, 0x83),
    (0x99, 0x70, 0xab),
    (0xc2, 0xa5, 0xcf),
    (0xe7, 0xd4, 0xe8),
    (0xf7, 0xf7, 0xf7),
    (0xd9, 0xf0, 0xd3),
    (0xa6, 0xdb, 0xa0),
    (0x5a, 0xae, 0x61),
    (0x1b, 0x78, 0x37),
    (0x00, 0x44, 0x1b),
];
const YLGNBU: [(u8, u8, u8); 9] = [
    (0xff, 0xff, 0xd9),
    (0xed, 0xf8, 0xb1),
    (0xc7, 0xe9, 0xb4),
    (0x7f, 0xcd, 0xbb),
    (0x41, 0xb6, 0xc4),
    (0x1d, 0x91, 0xc0),
    (0x22, 0x5e, 0xa8),
    (0x25, 0x34, 0x94),
    (0x08, 0x1d, 0x58),
];

/// The colour at `t` ∈ [0, 1] of a map given by evenly spaced samples.
fn ramp(samples: &[(u8, u8, u8)], t: f64) -> RGBColor {
    let at = t.clamp(0.0, 1.0) * (samples.len() - 1) as f64;
    let i = (at as usize).min(samples.len() - 2);
    let f = at - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (samples[i], samples[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Black or white, whichever reads better on `background` (scib's `autoset_fontcolors`).
fn contrasting(background: RGBColor) -> RGBColor {
    let RGBColor(r, g, b) = background;
    let luminance = 0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64;
    if luminance < 128.0 {
        WHITE
    } else {
        BLACK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_maps_reach_their_ends_and_interpolate() {
        assert_eq!(ramp(&PRGN, 0.0), RGBColor(0x40, 0x00, 0x4b));
        assert_eq!(ramp(&PRGN, 1.0), RGBColor(0x00, 0x44, 0x1b));
        assert_eq!(ramp(&PRGN, 0.5), RGBColor(0xf7, 0xf7, 0xf7));
        assert_eq!(ramp(&YLGNBU, 1.0 / 16.0), RGBColor(0xf6, 0xfc, 0xc5));
        assert_eq!(contrasting(ramp(&YLGNBU, 1.0)), WHITE);
        assert_eq!(contrasting(ramp(&YLGNBU, 0.0)), BLACK);
    }

    #[test]
    fn columns_are_placed_around_their_mean() {
        let values = [Some(0.2), Some(0.4), None, Some(0.6)];
        assert!((column_position(&values, 0.4) - 0.5).abs() < 1e-12);
        assert!(column_position(&values, 0.6) > 0.5 && column_position(&values, 0.6) < 1.0);
        assert_eq!(column_position(&[Some(0.3), Some(0.3)], 0.3), 0.5);
    }
}
