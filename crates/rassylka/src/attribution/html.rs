//! The report as a self-contained HTML page (`campaign report --format html`): the figures,
//! and the daily conversion since sending, treated against holdout, as an inline SVG chart
//! drawn by plotters. No scripts, no external resources: it opens in a browser offline.

use plotters::prelude::*;
use rust_decimal::Decimal;

use super::report::AttributionReport;
use crate::history::money;
use rassylka_template::OutputFormat;

const WIDTH: u32 = 640;
const HEIGHT: u32 = 320;
const TREATED: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const CONTROL: RGBColor = RGBColor(0xd6, 0x27, 0x28);

fn rub(amount: Decimal) -> String {
    format!("{} ₽", money(amount))
}

fn percent(rate: f64) -> String {
    format!("{:.2} %", rate * 100.0)
}

/// The chart's SVG, cumulative conversion by day, one line per group, and the top of its
/// scale. It carries no text (plotters would need a font for it); the page labels the axes.
fn chart(
    report: &AttributionReport,
) -> Result<(String, f64), plotters::drawing::DrawingAreaErrorKind<std::io::Error>> {
    let top = report
        .daily
        .iter()
        .flat_map(|d| [Some(d.treated), d.control])
        .flatten()
        .fold(0.0_f64, f64::max)
        .max(0.01)
        * 1.1;
    let days = f64::from(report.window_days);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .build_cartesian_2d(0.0..days, 0.0..top)?;
        chart
            .configure_mesh()
            .x_labels(0)
            .y_labels(0)
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
            .axis_style(RGBColor(0x99, 0x99, 0x99))
            .draw()?;
        let line = |pick: &dyn Fn(&super::DailyConversion) -> Option<f64>| {
            std::iter::once((0.0, 0.0))
                .chain(
                    report
                        .daily
                        .iter()
                        .filter_map(|d| pick(d).map(|rate| (f64::from(d.day), rate))),
                )
                .collect::<Vec<_>>()
        };
        chart.draw_series(LineSeries::new(
            line(&|d| Some(d.treated)),
            TREATED.stroke_width(3),
        ))?;
        if report.holdout.is_some() {
            chart.draw_series(LineSeries::new(
                line(&|d| d.control),
                CONTROL.stroke_width(3),
            ))?;
        }
        root.present()?;
    }
    Ok((svg, top))
}

impl AttributionReport {
    /// A self-contained HTML page of the report, titled `title`.
    pub fn to_html(&self, title: &str) -> String {
        let mut rows = vec![
            ("Получили сообщение", self.reached.to_string()),
            ("Купили в течение окна", self.converted.to_string()),
            ("Конверсия", percent(self.conversion)),
            ("Выручка", rub(self.revenue)),
            ("Покупок", self.purchases.to_string()),
            ("Средний чек", self.average_check.map_or("—".into(), rub)),
            (
                "Средний чек до рассылки",
                self.average_check_before.map_or("—".into(), rub),
            ),
            ("Затраты на отправку", rub(self.cost_sending)),
            ("Затраты на бонусы", rub(self.cost_bonus)),
            ("Затраты всего", rub(self.cost_total)),
            ("ROI", self.roi.map_or("—".into(), percent)),
        ];
        if let Some(p) = &self.promotion {
            rows.push(("Акция", p.id.clone()));
            rows.push((
                "Воспользовались акцией",
                format!("{} ({})", p.used, percent(p.conversion)),
            ));
            rows.push(("Сумма покупок по акции", rub(p.sum)));
        }
        if let Some(h) = &self.holdout {
            rows.push(("Контрольная группа", h.size.to_string()));
            rows.push(("Конверсия контрольной группы", percent(h.conversion)));
            rows.push((
                "Прирост конверсии (95 % ДИ)",
                format!(
                    "{} ({} … {})",
                    percent(h.lift),
                    percent(h.lift_ci95.0),
                    percent(h.lift_ci95.1)
                ),
            ));
            rows.push(("Дополнительная выручка", rub(h.incremental_revenue)));
        }
        let table: String = rows
            .iter()
            .map(|(name, value)| {
                format!(
                    "<tr><th>{}</th><td>{}</td></tr>",
                    OutputFormat::Html.escape(name),
                    OutputFormat::Html.escape(value)
                )
            })
            .collect();
        let figure = match chart(self) {
            Ok((svg, top)) => format!(
                "<figure><div class=\"axis\">{}</div>{svg}<figcaption>Накопленная конверсия по дням \
                 после отправки (0–{} дн.): <span class=\"t\">■ получили сообщение</span>{}</figcaption></figure>",
                OutputFormat::Html.escape(&format!("до {}", percent(top))),
                self.window_days,
                if self.holdout.is_some() {
                    " <span class=\"c\">■ контрольная группа</span>"
                } else {
                    ""
                }
            ),
            Err(_) => String::new(),
        };
        format!(
            "<!DOCTYPE html>\n<html lang=\"ru\"><head><meta charset=\"utf-8\"><title>{title}</title>\
             <style>body{{font-family:Arial,Helvetica,sans-serif;margin:32px;color:#222}}\
             table{{border-collapse:collapse}}th{{text-align:left;font-weight:normal;color:#555;padding:4px 16px 4px 0}}\
             td{{font-weight:bold;padding:4px 0}}.axis{{font-size:12px;color:#777}}\
             .t{{color:#1f77b4}}.c{{color:#d62728}}figcaption{{font-size:14px;color:#555}}</style></head>\
             <body><h1>{title}</h1><p>Окно: {} дн. после отправки.</p><table>{table}</table>{figure}</body></html>\n",
            self.window_days,
            title = OutputFormat::Html.escape(title),
        )
    }
}
