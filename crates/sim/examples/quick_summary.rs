fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let naive = args.iter().any(|a| a == "naive");
    let canary = args.iter().any(|a| a == "canary");
    let config = sim::SimConfig::new(0).naive(naive).canary(canary);
    let started = std::time::Instant::now();
    let summary = sim::run_seeds(0, count, &config, |_, _| {});
    println!(
        "{} in {:.2}s",
        summary.line(),
        started.elapsed().as_secs_f64()
    );
    if let Some(first) = &summary.first_failure {
        println!("{}", first.describe(25));
    }
}
