//! The simulation report as a picture: per scenario, the share of canaries failed by each
//! method as the analysis goes on (false alarms for A/A, detections otherwise).
//!
//! Text is drawn with DejaVu Sans embedded in the binary (assets/fonts, with its licence),
//! so the picture looks the same on any machine, fonts installed or not.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::SimReport;
use super::methods::Method;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Why the picture could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("plot {path}: {message}")]
    Draw { path: String, message: String },
    #[error("plot: the embedded font could not be loaded")]
    Font,
}

fn colour(method: Method) -> RGBColor {
    match method {
        Method::AugurySequential => RGBColor(0, 114, 178),
        Method::AuguryFixedHorizon => RGBColor(0, 158, 115),
        Method::Kayenta => RGBColor(213, 94, 0),
    }
}

impl SimReport {
    /// Writes a PNG: one panel per scenario, x = minutes into the analysis, y = share of
    /// analyses failed so far, one line per method.
    pub fn write_png(&self, path: &Path) -> Result<(), PlotError> {
        let mut font_ok = true;
        REGISTER
            .call_once(|| font_ok = register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
        if !font_ok {
            return Err(PlotError::Font);
        }
        let shown = path.display().to_string();
        let fail = |e: &dyn std::fmt::Display| PlotError::Draw {
            path: shown.clone(),
            message: e.to_string(),
        };

        let scenarios: Vec<&str> = {
            let mut names: Vec<&str> = Vec::new();
            for r in &self.rows {
                if !names.contains(&r.scenario.as_str()) {
                    names.push(&r.scenario);
                }
            }
            names
        };
        let cols = 3usize;
        let rows = scenarios.len().div_ceil(cols);
        let (w, h) = (1500u32, 40 + 380 * rows as u32);
        let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let c = &self.config;
        let title = format!(
            "Share of canaries failed over time ({} req/s per version, look every {} s, alpha {})",
            c.rate_per_sec, c.interval_secs, c.alpha
        );
        let (top, body) = root.split_vertically(40);
        top.titled(&title, ("sans-serif", 22))
            .map_err(|e| fail(&e))?;
        let panels = body.split_evenly((rows, cols));
        let minutes = c.lifetime_secs() / 60.0;
        for (panel, name) in panels.iter().zip(&scenarios) {
            let cells: Vec<_> = self.rows.iter().filter(|r| r.scenario == *name).collect();
            let null = cells.first().is_some_and(|r| r.null);
            let y_label = if null {
                "false alarms (share)"
            } else {
                "detected (share)"
            };
            // False-alarm rates live near alpha: zoom in so they can be read against it.
            let worst = cells.iter().map(|r| r.rate).fold(0.0, f64::max);
            let y_max = if null {
                (2.5 * c.alpha).max(1.2 * worst).min(1.0)
            } else {
                1.0
            };
            let mut chart = ChartBuilder::on(panel)
                .caption(*name, ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..minutes, 0.0..y_max)
                .map_err(|e| fail(&e))?;
            chart
                .configure_mesh()
                .x_desc("minutes since start")
                .y_desc(y_label)
                .label_style(("sans-serif", 13))
                .axis_desc_style(("sans-serif", 14))
                .draw()
                .map_err(|e| fail(&e))?;
            if null {
                let grey = RGBColor(120, 120, 120);
                chart
                    .draw_series(DashedLineSeries::new(
                        [(0.0, c.alpha), (minutes, c.alpha)],
                        6,
                        4,
                        grey.stroke_width(1),
                    ))
                    .map_err(|e| fail(&e))?
                    .label(format!("alpha = {}", c.alpha))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(1))
                    });
            }
            for row in cells {
                let colour = colour(row.method);
                let runs = row.runs.max(1) as f64;
                let points = std::iter::once((0.0, 0.0)).chain(
                    row.detected_by_look
                        .iter()
                        .enumerate()
                        .map(|(k, &d)| ((k + 1) as f64 * c.interval_secs / 60.0, d as f64 / runs)),
                );
                chart
                    .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                    .map_err(|e| fail(&e))?
                    .label(row.method.label())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .label_font(("sans-serif", 13))
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| fail(&e))?;
        }
        root.present().map_err(|e| fail(&e))?;
        Ok(())
    }
}
