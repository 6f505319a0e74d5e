//! Stage 5, **filter** (the pass after the barrier): drops the removed documents of each task
//! and names their survivors.

use super::*;

/// The filter of the pass after the barrier.
pub(super) struct MinhashFilter {
    pub(super) lookup: NodeLookup,
    pub(super) cluster_col: Option<String>,
    /// The survivors' names (with an id column or `against`).
    pub(super) prov: Option<ProvLookup>,
    pub(super) has_ids: bool,
    /// The `against` entries, for `duplicate_of_snapshot`.
    pub(super) snapshots: Vec<String>,
    pub(super) names: DropNames,
    pub(super) buf: Vec<u8>,
}

impl MinhashFilter {
    /// Names the survivor of removed document `key` (root `root`) in `self.buf`; returns the
    /// snapshot number (0: this run) and false when the name is unknown.
    pub(super) fn name(
        &mut self,
        key: u64,
        root: u64,
        status: u8,
    ) -> Result<(u32, bool), StepError> {
        match self.prov.as_mut() {
            Some(p) if status == REMOVED_AGAINST || self.has_ids => p.get(key, &mut self.buf),
            _ => {
                render_key(root, &mut self.buf);
                Ok((0, true))
            }
        }
    }
}

impl Processor for MinhashFilter {
    fn process(&mut self, batch: &mut DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        let n = batch.len();
        let mut ids: Option<Vec<Option<u64>>> =
            self.cluster_col.as_ref().map(|_| Vec::with_capacity(n));
        let (mut dup, mut against) = (0u64, 0u64);
        self.names.clear();
        for i in 0..n {
            let key = batch.keys().value(i);
            let node = self.lookup.get(key)?.map(|(_, x)| x);
            if let Some(ids) = ids.as_mut() {
                ids.push(node.map(|x| x.root));
            }
            let Some(node) = node.filter(|x| x.status != KEPT) else {
                continue;
            };
            if node.status == REMOVED {
                batch.drop_row(i, 0);
                dup += 1;
            } else {
                batch.drop_row(i, 1);
                against += 1;
            }
            let (snap, named) = self.name(key, node.root, node.status)?;
            self.names
                .push(i, snap, named.then_some(self.buf.as_slice()));
        }
        if let (Some(name), Some(ids)) = (&self.cluster_col, ids) {
            let col: ArrayRef = Arc::new(UInt64Array::from(ids));
            batch.set_column(name, col);
        }
        let snapshots = (!self.snapshots.is_empty()).then_some(self.snapshots.as_slice());
        self.names.apply(batch, snapshots);
        counters.add("minhash_removed", dup as f64);
        counters.add("minhash_removed_against", against as f64);
        Ok(())
    }
}
