//! The in-flight table: for every operation the kernel may still be working on, the memory its
//! SQE points into. An entry is removed only when the operation's final completion is reaped,
//! so nothing the kernel can touch is freed early.
//!
//! The table is a slab: `user_data` encodes the slot index and a generation, so finding an
//! operation's memory is an index, not a hash lookup, and a stale `user_data` can never match a
//! newer operation in a reused slot.

use crate::mem::lent::Lent;

/// `user_data` values below 2**32 are never slab entries (slab generations start at 1). They
/// are handed to operations that own nothing and asked for `skip_success`, which may never
/// complete and so cannot hold a slot.
const UNTRACKED_LIMIT: u64 = 1 << 32;

/// Internal operations the ring submits for itself (cancellation while closing).
pub const INTERNAL_USER_DATA: u64 = u64::MAX;

const NO_SLOT: u32 = u32::MAX;

struct Slot {
    generation: u32,
    /// `Some` while occupied.
    lent: Option<Lent>,
    next_free: u32,
}

#[derive(Default)]
pub struct InFlight {
    slots: Vec<Slot>,
    free_head: Option<u32>,
    live: usize,
    untracked_counter: u32,
}

impl InFlight {
    /// Stores `lent` and returns the `user_data` its SQE must carry.
    pub fn insert(&mut self, lent: Lent) -> u64 {
        self.live += 1;
        let index = match self.free_head {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                self.free_head = (slot.next_free != NO_SLOT).then_some(slot.next_free);
                slot.lent = Some(lent);
                index
            }
            None => {
                let index = u32::try_from(self.slots.len()).expect("fewer than 2**32 operations");
                self.slots.push(Slot {
                    generation: 1,
                    lent: Some(lent),
                    next_free: NO_SLOT,
                });
                index
            }
        };
        encode(self.slots[index as usize].generation, index)
    }

    /// A `user_data` for an operation that is not tracked (it owns nothing and may never
    /// complete). Unique among the last 2**32 such operations.
    pub fn untracked_user_data(&mut self) -> u64 {
        self.untracked_counter = self.untracked_counter.wrapping_add(1);
        u64::from(self.untracked_counter)
    }

    /// Removes and returns what the operation with this `user_data` owned, or `None` for
    /// untracked, internal or unknown `user_data`.
    pub fn remove(&mut self, user_data: u64) -> Option<Lent> {
        if !(UNTRACKED_LIMIT..INTERNAL_USER_DATA).contains(&user_data) {
            return None;
        }
        let (generation, index) = decode(user_data);
        let slot = self.slots.get_mut(index as usize)?;
        if slot.generation != generation || slot.lent.is_none() {
            return None;
        }
        let lent = slot.lent.take();
        // Generations skip 0 (untracked space) and u32::MAX (internal user_data).
        slot.generation = match slot.generation.wrapping_add(1) {
            0 | u32::MAX => 1,
            next => next,
        };
        slot.next_free = self.free_head.unwrap_or(NO_SLOT);
        self.free_head = Some(index);
        self.live -= 1;
        lent
    }

    /// What the operation with this `user_data` owns, left in place.
    pub fn get(&self, user_data: u64) -> Option<&Lent> {
        if !(UNTRACKED_LIMIT..INTERNAL_USER_DATA).contains(&user_data) {
            return None;
        }
        let (generation, index) = decode(user_data);
        let slot = self.slots.get(index as usize)?;
        (slot.generation == generation)
            .then_some(slot.lent.as_ref())
            .flatten()
    }

    /// Operations whose completion has not been reaped yet.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The `user_data` of every live operation (for cancelling them one by one on kernels
    /// without `IORING_ASYNC_CANCEL_ANY`).
    pub fn live_user_data(&self) -> Vec<u64> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.lent.is_some())
            .map(|(index, slot)| encode(slot.generation, index as u32))
            .collect()
    }
}

fn encode(generation: u32, index: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(index)
}

fn decode(user_data: u64) -> (u32, u32) {
    ((user_data >> 32) as u32, user_data as u32)
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;

    use super::*;

    #[test]
    fn user_data_round_trips_and_frees_the_slot() {
        let mut table = InFlight::default();
        let a = table.insert(Lent::Nothing);
        let b = table.insert(Lent::Path(CString::new("/x").unwrap()));
        assert_ne!(a, b);
        assert_eq!(table.len(), 2);
        assert!(matches!(table.remove(b), Some(Lent::Path(_))));
        assert_eq!(table.len(), 1);
        assert!(
            table.remove(b).is_none(),
            "a reaped user_data must not match twice"
        );
    }

    #[test]
    fn a_reused_slot_gets_a_new_user_data() {
        let mut table = InFlight::default();
        let first = table.insert(Lent::Nothing);
        table.remove(first);
        let second = table.insert(Lent::Nothing);
        assert_ne!(first, second, "same slot, new generation");
        assert_eq!(first as u32, second as u32, "the slot was reused");
        assert!(table.remove(first).is_none());
        assert!(table.remove(second).is_some());
    }

    #[test]
    fn untracked_and_internal_user_data_never_hit_the_slab() {
        let mut table = InFlight::default();
        let tracked = table.insert(Lent::Nothing);
        let untracked = table.untracked_user_data();
        assert!(untracked < UNTRACKED_LIMIT);
        assert!(tracked >= UNTRACKED_LIMIT);
        assert!(table.remove(untracked).is_none());
        assert!(table.remove(INTERNAL_USER_DATA).is_none());
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn live_user_data_lists_exactly_the_unreaped() {
        let mut table = InFlight::default();
        let ids: Vec<u64> = (0..5).map(|_| table.insert(Lent::Nothing)).collect();
        table.remove(ids[1]);
        table.remove(ids[3]);
        let mut live = table.live_user_data();
        live.sort_unstable();
        assert_eq!(live, vec![ids[0], ids[2], ids[4]]);
    }
}
