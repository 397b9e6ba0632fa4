/// The `q` quantile of latencies in microseconds, in milliseconds (0 for none); sorts `micros`.
pub fn quantile(micros: &mut [u64], q: f64) -> f64 {
    if micros.is_empty() {
        return 0.0;
    }
    micros.sort_unstable();
    let index = ((micros.len() as f64 * q).ceil() as usize).clamp(1, micros.len()) - 1;
    micros[index] as f64 / 1_000.0
}
