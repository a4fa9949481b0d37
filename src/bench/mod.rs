//! `homeroom bench`: seeds a database at school scale and measures what people wait for.
//! `bench timeline` (`timeline.rs`) measures the class timeline, the session list and the
//! attendance export; `seed.rs` writes the data.

mod seed;
pub mod timeline;

#[derive(Debug, clap::Subcommand)]
pub enum Bench {
    /// Seed a school (or reuse one seeded before) and measure the timeline, the session list
    /// and the CSV export for a family and a teacher.
    Timeline(timeline::TimelineBench),
}

pub async fn main(bench: Bench) -> anyhow::Result<()> {
    match bench {
        Bench::Timeline(args) => timeline::run(args).await,
    }
}
