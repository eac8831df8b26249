fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
    let config = sim::SimConfig::new(seed)
        .naive(args.iter().any(|a| a == "naive"))
        .canary(args.iter().any(|a| a == "canary"));
    let report = sim::Simulator::new().run(config);
    for line in report.trace.lines() {
        println!("{line}");
    }
    println!("{}", report.describe(0));
}
