//! The comparison: the stepped workload run on Chattr (default disk store, then `mem://`) and
//! on the Socket.IO peer, each step on a fresh server, and what they sustained written as a
//! Markdown table and a latency-vs-load plot (SVG), into docs/benchmarks.md if asked.

use std::path::Path;

use plotters::element::DashedPathElement;
use plotters::prelude::*;

/// What one step measured, for the table and the plot.
#[derive(Debug, Clone)]
pub(crate) struct Point {
    /// Messages a second per sender, as asked.
    pub rate: f64,
    pub delivered_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub lost: u64,
    pub dropped: usize,
    /// The server's CPU over the run (100 = one core), and per delivery (µs).
    pub server_cpu: Option<f64>,
    pub cpu_per_delivery_us: Option<f64>,
    pub peak_mib: Option<f64>,
    pub generator_cpu: Option<f64>,
    /// The share of the machine's CPU time (%) its hypervisor gave to other guests.
    pub steal: Option<f64>,
}

/// Steal (%) above which a step that fell short says more about the host than the server.
pub(crate) const STEAL_LIMIT: f64 = 5.0;

/// Whether a step counts, and if not why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Sustained,
    /// A message lost or a client dropped.
    Lost,
    /// Delivery p99 over the limit.
    TooSlow,
    /// The generator used more CPU than the server: on shared cores the run measured the tool.
    GeneratorBound,
    /// Too slow, or generator-bound, while the hypervisor gave more than [`STEAL_LIMIT`] of the
    /// machine's time to other guests: the step measured the host (it is run again).
    HostBusy,
}

impl Verdict {
    pub(crate) fn of(point: &Point, p99_limit_ms: f64) -> Self {
        let verdict = if point.lost > 0 || point.dropped > 0 {
            Self::Lost
        } else if point.p99_ms > p99_limit_ms {
            Self::TooSlow
        } else if matches!((point.generator_cpu, point.server_cpu), (Some(g), Some(s)) if g > s) {
            Self::GeneratorBound
        } else {
            Self::Sustained
        };
        // Falling short while the host gave the CPUs away measured the host; nothing excuses a
        // lost message.
        let host_busy = point.steal.is_some_and(|steal| steal > STEAL_LIMIT);
        match verdict {
            Self::TooSlow | Self::GeneratorBound if host_busy => Self::HostBusy,
            verdict => verdict,
        }
    }

    fn says(self, p99_limit_ms: f64) -> String {
        match self {
            Self::Sustained => "sustained".into(),
            Self::Lost => "lost messages".into(),
            Self::TooSlow => format!("p99 over {p99_limit_ms:.0} ms"),
            Self::GeneratorBound => "generator-bound".into(),
            Self::HostBusy => "host busy (steal)".into(),
        }
    }
}

/// One server's steps, in order, up to and including the first not sustained.
pub(crate) struct Series {
    pub name: String,
    /// Run with the server and the generator on one core each (drawn dashed).
    pub pinned: bool,
    pub steps: Vec<(Point, Verdict)>,
}

impl Series {
    /// The sustained step with the most deliveries a second.
    fn best(&self) -> Option<&Point> {
        self.steps
            .iter()
            .filter(|(_, v)| *v == Verdict::Sustained)
            .map(|(p, _)| p)
            .max_by(|a, b| a.delivered_per_second.total_cmp(&b.delivered_per_second))
    }

    /// The first step not sustained, and why.
    pub(crate) fn limit(&self) -> Option<&(Point, Verdict)> {
        self.steps.iter().find(|(_, v)| *v != Verdict::Sustained)
    }
}

/// The comparison as Markdown: one row per server with what it sustained and where it stopped.
pub(crate) fn table(series: &[Series], p99_limit_ms: f64) -> String {
    let mut out = format!(
        "| server | most deliveries/s sustained (p99 ≤ {p99_limit_ms:.0} ms, nothing lost) | p99 there | server CPU there | CPU per delivery | peak memory | generator CPU | next step |\n|---|---|---|---|---|---|---|---|\n"
    );
    for s in series {
        let next = s.limit().map_or("(all steps sustained)".into(), |(p, v)| {
            format!("{:.0}/s: {} (p99 {:.1} ms)", p.delivered_per_second, v.says(p99_limit_ms), p.p99_ms)
        });
        match s.best() {
            Some(p) => {
                out += &format!(
                    "| {} | {:.0} | {:.1} ms | {} | {} | {} | {} | {} |\n",
                    s.name,
                    p.delivered_per_second,
                    p.p99_ms,
                    percent(p.server_cpu),
                    micros(p.cpu_per_delivery_us),
                    p.peak_mib.map_or("–".into(), |m| format!("{m:.0} MiB")),
                    percent(p.generator_cpu),
                    next,
                )
            }
            None => out += &format!("| {} | none | – | – | – | – | – | {} |\n", s.name, next),
        }
    }
    out
}

/// A share of one core, or a dash when it was not measured.
fn percent(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.0}%"))
}

/// Microseconds, or a dash when not measured.
fn micros(v: Option<f64>) -> String {
    v.map_or("–".into(), |us| format!("{us:.1} µs"))
}

/// Every step of every server, as the rows `--markdown` prints, for the record.
pub(crate) fn steps_table(series: &[Series], p99_limit_ms: f64) -> String {
    let mut out = String::from(
        "| server | rate per sender | delivered/s | p50 | p99 | server CPU | CPU per delivery | generator CPU | steal | verdict |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for s in series {
        for (p, v) in &s.steps {
            out += &format!(
                "| {} | {}/s | {:.0} | {:.1} ms | {:.1} ms | {} | {} | {} | {} | {} |\n",
                s.name,
                p.rate,
                p.delivered_per_second,
                p.p50_ms,
                p.p99_ms,
                percent(p.server_cpu),
                micros(p.cpu_per_delivery_us),
                percent(p.generator_cpu),
                p.steal.map_or("–".into(), |s| format!("{s:.1}%")),
                v.says(p99_limit_ms),
            );
        }
    }
    out
}

/// Draws p99 delivery latency against deliveries a second, one line per server, with the
/// limit as a dashed line, into an SVG file.
pub(crate) fn plot(series: &[Series], p99_limit_ms: f64, path: &Path) -> Result<(), String> {
    let x_max = series
        .iter()
        .flat_map(|s| s.steps.iter().map(|(p, _)| p.delivered_per_second / 1000.0))
        .fold(10.0_f64, f64::max)
        * 1.05;
    let y_max =
        series.iter().flat_map(|s| s.steps.iter().map(|(p, _)| p.p99_ms)).fold(p99_limit_ms * 2.0, f64::max)
            * 1.2;
    let root = SVGBackend::new(path, (760, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Delivery latency (p99) against load", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, (1.0..y_max).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_desc("deliveries per second (thousands)")
        .y_desc("p99 latency (ms, log scale)")
        .draw()
        .map_err(|e| e.to_string())?;
    let limit = p99_limit_ms.max(1.0);
    chart
        .draw_series(DashedLineSeries::new(vec![(0.0, limit), (x_max, limit)], 6, 4, BLACK.mix(0.5).into()))
        .map_err(|e| e.to_string())?
        .label(format!("p99 limit, {p99_limit_ms:.0} ms"))
        .legend(|(x, y)| DashedPathElement::new(vec![(x, y), (x + 18, y)], 6, 4, BLACK.mix(0.5)));
    let colours = [RGBColor(0x1f, 0x77, 0xb4), RGBColor(0x2c, 0xa0, 0x2c), RGBColor(0xd6, 0x27, 0x28)];
    // The same server has the same colour, pinned or not; pinned runs are dashed.
    let shared = series.iter().filter(|s| !s.pinned).count().max(1);
    for (i, s) in series.iter().enumerate() {
        let colour = colours[(if s.pinned { i.saturating_sub(shared) } else { i }) % colours.len()];
        let points: Vec<(f64, f64)> =
            s.steps.iter().map(|(p, _)| (p.delivered_per_second / 1000.0, p.p99_ms.max(1.0))).collect();
        let style = colour.stroke_width(2);
        let drawn = if s.pinned {
            chart.draw_series(DashedLineSeries::new(points.clone(), 4, 3, style))
        } else {
            chart.draw_series(LineSeries::new(points.clone(), style))
        };
        let drawn = drawn.map_err(|e| e.to_string())?.label(s.name.clone());
        // The legend's line is drawn as the series is, dashed for the pinned runs.
        if s.pinned {
            drawn.legend(move |(x, y)| DashedPathElement::new(vec![(x, y), (x + 18, y)], 4, 3, style));
        } else {
            drawn.legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        }
        chart
            .draw_series(points.into_iter().map(|p| Circle::new(p, 3, colour.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Puts `section` between the `<!-- compare:begin -->` and `<!-- compare:end -->` markers of
/// the Markdown file at `path`, replacing what was there.
pub(crate) fn write_into(path: &Path, section: &str) -> Result<(), String> {
    const BEGIN: &str = "<!-- compare:begin -->";
    const END: &str = "<!-- compare:end -->";
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (Some(begin), Some(end)) = (text.find(BEGIN), text.find(END)) else {
        return Err(format!("{} has no {BEGIN} … {END} section to write into", path.display()));
    };
    if end < begin {
        return Err(format!("{}: {END} comes before {BEGIN}", path.display()));
    }
    let updated = format!("{}{BEGIN}\n{}\n{}", &text[..begin], section.trim_end(), &text[end..]);
    std::fs::write(path, updated).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(delivered: f64, p99: f64, lost: u64, server: f64, generator: f64) -> Point {
        Point {
            rate: 1.0,
            delivered_per_second: delivered,
            p50_ms: p99 / 2.0,
            p99_ms: p99,
            lost,
            dropped: 0,
            server_cpu: Some(server),
            cpu_per_delivery_us: Some(5.0),
            peak_mib: Some(100.0),
            generator_cpu: Some(generator),
            steal: Some(0.5),
        }
    }

    #[test]
    fn a_step_is_sustained_only_without_loss_under_the_limit_and_not_generator_bound() {
        assert_eq!(Verdict::of(&point(1e5, 20.0, 0, 90.0, 50.0), 50.0), Verdict::Sustained);
        assert_eq!(Verdict::of(&point(1e5, 20.0, 1, 90.0, 50.0), 50.0), Verdict::Lost);
        assert_eq!(Verdict::of(&point(1e5, 51.0, 0, 90.0, 50.0), 50.0), Verdict::TooSlow);
        assert_eq!(Verdict::of(&point(1e5, 20.0, 0, 60.0, 95.0), 50.0), Verdict::GeneratorBound);
    }

    #[test]
    fn a_step_that_falls_short_while_the_host_is_busy_measured_the_host_but_a_loss_is_a_loss() {
        let busy = |p: Point| Point { steal: Some(STEAL_LIMIT + 1.0), ..p };
        assert_eq!(Verdict::of(&busy(point(1e5, 51.0, 0, 90.0, 50.0)), 50.0), Verdict::HostBusy);
        assert_eq!(Verdict::of(&busy(point(1e5, 20.0, 0, 60.0, 95.0)), 50.0), Verdict::HostBusy);
        assert_eq!(Verdict::of(&busy(point(1e5, 20.0, 0, 90.0, 50.0)), 50.0), Verdict::Sustained);
        assert_eq!(Verdict::of(&busy(point(1e5, 51.0, 1, 90.0, 50.0)), 50.0), Verdict::Lost);
        let quiet = Point { steal: Some(STEAL_LIMIT), ..point(1e5, 51.0, 0, 90.0, 50.0) };
        assert_eq!(Verdict::of(&quiet, 50.0), Verdict::TooSlow);
    }

    #[test]
    fn the_table_shows_the_best_sustained_step_and_where_it_stopped() {
        let series = [Series {
            name: "chattrd, disk".into(),
            pinned: false,
            steps: vec![
                (point(50_000.0, 10.0, 0, 50.0, 30.0), Verdict::Sustained),
                (point(100_000.0, 30.0, 0, 80.0, 50.0), Verdict::Sustained),
                (point(150_000.0, 80.0, 0, 100.0, 60.0), Verdict::TooSlow),
            ],
        }];
        let table = table(&series, 50.0);
        let row = table.lines().nth(2).unwrap();
        assert!(row.starts_with("| chattrd, disk | 100000 | 30.0 ms |"), "{row}");
        assert!(row.contains("150000/s: p99 over 50 ms (p99 80.0 ms)"), "{row}");
    }

    #[test]
    fn the_section_replaces_what_the_markers_hold_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("chattr-bench-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("b.md");
        std::fs::write(&file, "# T\nbefore\n<!-- compare:begin -->\nold\n<!-- compare:end -->\nafter\n")
            .unwrap();
        write_into(&file, "new table\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "# T\nbefore\n<!-- compare:begin -->\nnew table\n<!-- compare:end -->\nafter\n"
        );
        std::fs::write(&file, "no markers\n").unwrap();
        assert!(write_into(&file, "x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_plot_is_an_svg_with_every_server() {
        let dir = std::env::temp_dir().join(format!("chattr-bench-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("p.svg");
        let series = [
            Series {
                name: "A".into(),
                pinned: false,
                steps: vec![(point(5e4, 10.0, 0, 50.0, 30.0), Verdict::Sustained)],
            },
            Series {
                name: "B".into(),
                pinned: true,
                steps: vec![(point(5e4, 900.0, 0, 50.0, 30.0), Verdict::TooSlow)],
            },
        ];
        plot(&series, 50.0, &file).unwrap();
        let svg = std::fs::read_to_string(&file).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        let label = |name: &str| svg.contains(&format!(">\n{name}\n</text>"));
        assert!(label("A") && label("B"), "both servers in the legend");
        assert!(label("p99 limit, 50 ms"), "and the limit");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
