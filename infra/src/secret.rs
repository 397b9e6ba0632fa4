//! Comparing secrets (callback secrets, CSRF tokens) without telling an attacker, by the time taken,
//! how much of a guess was right.

/// Whether `given` is `expected`, in time that does not depend on where the two differ.
pub fn same_secret(expected: &str, given: &str) -> bool {
    expected.len() == given.len() && expected.bytes().zip(given.bytes()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}
