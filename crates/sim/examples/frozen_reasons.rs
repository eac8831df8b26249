fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let canary = args.iter().any(|a| a == "canary");
    let simulator = sim::Simulator::new();
    for seed in 0..count {
        let report = simulator.run(sim::SimConfig::new(seed).canary(canary));
        if let sim::Ending::Frozen { reason } = &report.ending {
            println!("seed {seed}: {}", &reason[..reason.len().min(200)]);
        }
    }
}
