//! Linearizability of register histories: the Wing–Gong search with Lowe's memoization, as
//! porcupine implements it, one key at a time (linearizability is compositional).
//!
//! Operations whose outcome is unknown may have taken effect at any point after their
//! invocation, or never: their return is at infinity and the model accepts any result for them,
//! so the search may place them anywhere after their call, including after everything else
//! (which is the same as never). Reads without a result and failed operations constrain nothing
//! and are left out.

use std::collections::{BTreeMap, HashSet};

use super::history::{Outcome, RegEntry, RegOp};

/// An operation prepared for the search.
#[derive(Debug, Clone, Copy)]
struct Op {
    call: u64,
    ret: u64,
    op: RegOp,
    unknown: bool,
}

/// The register model: apply `op` to `state`; None if the recorded result is impossible.
fn step(state: i64, op: &Op) -> Option<i64> {
    match op.op {
        RegOp::Read { value } => (value == Some(state)).then_some(state),
        RegOp::Write { value } => Some(value),
        RegOp::Cas { from, to, applied } => match (applied, op.unknown) {
            (_, true) => Some(if state == from { to } else { state }),
            (Some(true), false) => (state == from).then_some(to),
            (Some(false), false) => (state != from).then_some(state),
            (None, false) => None,
        },
    }
}

/// The verdict for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A valid linearization exists.
    Linearizable,
    /// None exists.
    NotLinearizable,
}

/// Check the operations of one register starting at `init`.
fn check_key(ops: &[Op], init: i64) -> Verdict {
    // Events: a call and a return per operation, in time order (calls before returns at equal
    // times, so touching operations count as concurrent: the permissive reading).
    let n = ops.len();
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, o) in ops.iter().enumerate() {
        events.push((o.call, false, i));
        events.push((o.ret, true, i));
    }
    events.sort_by_key(|&(t, is_ret, i)| (t, is_ret, i));
    // A doubly linked list over the events, with a head sentinel at index `len`.
    let len = events.len();
    let head = len;
    let mut next: Vec<usize> = (1..=len).collect();
    next.push(0);
    let mut prev: Vec<usize> = (0..=len).map(|i| if i == 0 { head } else { i - 1 }).collect();
    next[head] = if len == 0 { usize::MAX } else { 0 };
    if len > 0 {
        next[len - 1] = usize::MAX;
    }
    let mut ret_pos = vec![0usize; n];
    for (pos, &(_, is_ret, i)) in events.iter().enumerate() {
        if is_ret {
            ret_pos[i] = pos;
        }
    }
    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, p: usize| {
        let (a, b) = (prev[p], next[p]);
        next[a] = b;
        if b != usize::MAX {
            prev[b] = a;
        }
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, p: usize| {
        let (a, b) = (prev[p], next[p]);
        next[a] = p;
        if b != usize::MAX {
            prev[b] = p;
        }
    };

    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, i64)> = HashSet::new();
    let mut stack: Vec<(usize, i64)> = Vec::new(); // (call position, state before)
    let mut state = init;
    let mut cur = next[head];
    while next[head] != usize::MAX {
        if cur == usize::MAX {
            // Cannot happen: a return event always ends the list of pending ones.
            return Verdict::NotLinearizable;
        }
        let (_, is_ret, i) = events[cur];
        if !is_ret {
            if let Some(new_state) = step(state, &ops[i]) {
                linearized[i / 64] |= 1 << (i % 64);
                if cache.insert((linearized.clone(), new_state)) {
                    stack.push((cur, state));
                    state = new_state;
                    unlink(&mut next, &mut prev, cur);
                    unlink(&mut next, &mut prev, ret_pos[i]);
                    cur = next[head];
                    continue;
                }
                linearized[i / 64] &= !(1 << (i % 64));
            }
            cur = next[cur];
        } else {
            // A return whose operation is not linearized yet: undo the last choice.
            let Some((call_pos, old)) = stack.pop() else { return Verdict::NotLinearizable };
            let (_, _, j) = events[call_pos];
            linearized[j / 64] &= !(1 << (j % 64));
            state = old;
            relink(&mut next, &mut prev, ret_pos[j]);
            relink(&mut next, &mut prev, call_pos);
            cur = next[call_pos];
        }
    }
    Verdict::Linearizable
}

/// Check a whole register history (every key starts at `init`). Returns the keys whose
/// history has no linearization.
pub fn check_registers(history: &[RegEntry], init: i64) -> Vec<u32> {
    let mut by_key: BTreeMap<u32, Vec<Op>> = BTreeMap::new();
    for e in history {
        let unknown = e.outcome == Outcome::Unknown;
        let keep = !matches!(
            (e.outcome, e.op),
            (Outcome::Fail, _)
                | (Outcome::Unknown, RegOp::Read { .. })
                | (Outcome::Ok, RegOp::Read { value: None })
        );
        if keep {
            let ret = if unknown { u64::MAX } else { e.complete };
            by_key.entry(e.key).or_default().push(Op { call: e.invoke, ret, op: e.op, unknown });
        }
    }
    by_key
        .into_iter()
        .filter(|(_, ops)| check_key(ops, init) == Verdict::NotLinearizable)
        .map(|(k, _)| k)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(process: usize, invoke: u64, complete: u64, op: RegOp, outcome: Outcome) -> RegEntry {
        RegEntry { process, key: 0, op, invoke, complete, outcome, level: None }
    }
    fn r(v: i64) -> RegOp {
        RegOp::Read { value: Some(v) }
    }
    fn w(v: i64) -> RegOp {
        RegOp::Write { value: v }
    }
    use Outcome::{Fail, Ok as Done, Unknown};

    #[test]
    fn sequential_and_concurrent_histories_that_are_linearizable() {
        let h = vec![
            e(0, 0, 10, w(1), Done),
            e(1, 20, 30, r(1), Done),
            e(0, 40, 50, w(2), Done),
            e(1, 60, 70, r(2), Done),
        ];
        assert!(check_registers(&h, 0).is_empty());
        // A read overlapping a write may see either value.
        let h = vec![e(0, 0, 100, w(1), Done), e(1, 10, 20, r(0), Done), e(2, 30, 40, r(1), Done)];
        assert!(check_registers(&h, 0).is_empty());
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_rejected() {
        let h = vec![e(0, 0, 10, w(1), Done), e(1, 20, 30, r(0), Done)];
        assert_eq!(check_registers(&h, 0), vec![0]);
    }

    #[test]
    fn reads_that_go_back_in_time_are_rejected() {
        // Porcupine's classic: both writes overlap the reads, but once 2 is read, 1 cannot be.
        let h = vec![
            e(0, 0, 100, w(1), Done),
            e(1, 0, 100, w(2), Done),
            e(2, 10, 20, r(2), Done),
            e(2, 30, 40, r(1), Done),
            e(3, 50, 60, r(2), Done),
        ];
        assert_eq!(check_registers(&h, 0), vec![0]);
    }

    #[test]
    fn cas_results_must_match_the_state() {
        let cas = |from, to, applied| RegOp::Cas { from, to, applied: Some(applied) };
        let ok = vec![
            e(0, 0, 10, cas(0, 5, true), Done),
            e(1, 20, 30, cas(0, 6, false), Done),
            e(1, 40, 50, r(5), Done),
        ];
        assert!(check_registers(&ok, 0).is_empty());
        let bad = vec![e(0, 0, 10, cas(0, 5, true), Done), e(1, 20, 30, cas(5, 6, false), Done)];
        assert_eq!(check_registers(&bad, 0), vec![0]);
    }

    #[test]
    fn unknown_writes_may_or_may_not_have_happened() {
        // Seen later: fine.
        let h = vec![e(0, 0, 10, w(1), Unknown), e(1, 50, 60, r(1), Done)];
        assert!(check_registers(&h, 0).is_empty());
        // Never seen: fine too.
        let h = vec![e(0, 0, 10, w(1), Unknown), e(1, 50, 60, r(0), Done)];
        assert!(check_registers(&h, 0).is_empty());
        // But not before it was invoked.
        let h = vec![e(1, 0, 5, r(1), Done), e(0, 10, 20, w(1), Unknown)];
        assert_eq!(check_registers(&h, 0), vec![0]);
        // And an unknown write cannot take effect twice: 1, then 2, then 1 again is impossible.
        let h = vec![
            e(0, 0, 10, w(1), Unknown),
            e(1, 20, 30, r(1), Done),
            e(1, 40, 50, w(2), Done),
            e(1, 60, 70, r(1), Done),
        ];
        assert_eq!(check_registers(&h, 0), vec![0]);
        // Failed writes never happened.
        let h = vec![e(0, 0, 10, w(1), Fail), e(1, 50, 60, r(1), Done)];
        assert_eq!(check_registers(&h, 0), vec![0]);
    }

    #[test]
    fn many_concurrent_operations_finish_quickly() {
        // 8 clients, 400 operations, all overlapping in waves: memoization keeps it tractable.
        let mut h = Vec::new();
        let mut v = 0;
        for wave in 0..50u64 {
            let t = wave * 100;
            v += 1;
            h.push(e(0, t, t + 90, w(v), Done));
            for p in 1..8 {
                h.push(e(p, t + 1, t + 95, r(if p % 2 == 0 { v } else { v - 1 }), Done));
            }
        }
        assert!(check_registers(&h, 0).is_empty());
    }
}
