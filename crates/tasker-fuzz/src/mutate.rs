//! A small, seeded mutator for the stable-toolchain smoke run: byte flips,
//! insertions, deletions, duplicated runs and splices of tokens that
//! matter to the parsers. Deterministic for a seed, so a failure replays.

/// Tokens worth splicing in: structure, YAML features, JSON edge cases.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"\"",
    b"\n",
    b"- ",
    b"&a ",
    b"*a",
    b"!!str ",
    b"<<: ",
    b"---\n",
    b"...\n",
    b"\\u0000",
    b"\\ud800",
    b"1e999",
    b"-0",
    b"null",
    b"true",
    b"steps:",
    b"dependencies: [",
    b"type: decision",
    b"type: batchable",
    b"type: deferred_convergence",
    b"handler: { callable: x }",
    b"\"context\": ",
    b"\"priority\": ",
    b"\"idempotency_key\": ",
    b"\xff",
    b"\xc3\x28",
];

/// Returns a mutant of `input`, changed by one to four edits drawn from `rng`.
pub fn mutate(input: &[u8], rng: &mut fastrand::Rng) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.usize(1..=4) {
        let at = if out.is_empty() {
            0
        } else {
            rng.usize(0..=out.len())
        };
        match rng.u8(0..6) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << rng.u8(0..8);
            }
            1 => out.insert(at, rng.u8(..)),
            2 if !out.is_empty() => {
                let end = (at + rng.usize(1..16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            3 if !out.is_empty() => {
                let start = rng.usize(0..out.len());
                let end = (start + rng.usize(1..64)).min(out.len());
                let run = out[start..end].to_vec();
                let times = rng.usize(1..8);
                for _ in 0..times {
                    out.splice(at..at, run.iter().copied());
                }
            }
            _ => {
                let token = TOKENS[rng.usize(0..TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_the_same_mutants() {
        let input = b"name: x\nsteps: []\n";
        let a: Vec<_> = (0..20)
            .map(|i| mutate(input, &mut fastrand::Rng::with_seed(i)))
            .collect();
        let b: Vec<_> = (0..20)
            .map(|i| mutate(input, &mut fastrand::Rng::with_seed(i)))
            .collect();
        assert_eq!(a, b);
        assert!(a.iter().any(|m| m.as_slice() != input));
    }
}
