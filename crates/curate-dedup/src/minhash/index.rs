//! Stage 4, **index** (`bands` tasks, with `write_index`): the survivors' band keys and ids,
//! published for later runs' `against`.

use super::*;

impl MinhashDedup {
    pub(super) fn run_index(&self, cx: &StageContext<'_>) -> Result<(), StepError> {
        if cx.task == self.cfg.bands {
            return self.run_index_names(cx);
        }
        let band = cx.task;
        let manifests = read_manifests(cx.dir, cx.observed_tasks)?;
        let runs: Vec<PathBuf> = manifests
            .iter()
            .flat_map(|m| m.runs.iter().map(|r| cx.dir.join(r)))
            .collect();
        let dir = Self::index_dir(cx.dir);
        let tmp = dir.join(format!("tmp-{band:04}"));
        let _ = std::fs::remove_dir_all(&tmp);
        let buf = (self.memory / 2 / runs.len().max(1)).clamp(4096, 1 << 20);
        // The removed set, sorted by key, in chunks of at most `chunk` keys (8 bytes each). One
        // chunk: one pass over the band's records. More: one pass per chunk over the records
        // whose keys fall in the chunk's key range, (band key, survivor key) pairs through an
        // external sort. Each band key is written once, with the smallest key of a survivor
        // that has it: the same file either way.
        let chunk = (self.memory / 4 / 8).max(16);
        let mut nodes = PartReader::<NodeRec>::open(&Self::nodes_path(cx.dir), 0, 1 << 16)?;
        let mut carry: Option<u64> = None;
        let mut lo = 0u64;
        let mut removed_total = 0u64;
        let mut sorter: Option<ExternalSorter<IdxRec>> = None;
        let mut w = RunStreamWriter::<IdxRec>::create(&dir.join(format!("band-{band:04}.bin")))?;
        let mut passes = 0u64;
        loop {
            passes += 1;
            let mut removed: Vec<u64> = carry.take().into_iter().collect();
            while let Some(n) = nodes.next_record()? {
                if n.status == KEPT {
                    continue;
                }
                if removed.len() >= chunk {
                    carry = Some(n.key);
                    break;
                }
                removed.push(n.key);
            }
            removed_total += removed.len() as u64;
            // This pass covers keys lo..hi; all removed keys of that range are in `removed`.
            let hi = carry;
            if hi.is_some() && sorter.is_none() {
                std::fs::create_dir_all(&tmp).map_err(|e| StepError::io(&tmp, e))?;
                sorter = Some(ExternalSorter::new(&tmp, "survivors", self.memory / 4));
            }
            // The current band key and the smallest survivor key seen with it.
            let mut cur: Option<IdxRec> = None;
            let mut emit = |r: IdxRec| -> Result<(), StepError> {
                match sorter.as_mut() {
                    Some(s) => s.push(r),
                    None => w.push(r),
                }
            };
            for range in 0..self.cfg.hash_ranges {
                let p = band * self.cfg.hash_ranges + range;
                let mut sources: Vec<Box<dyn Source<BandRec> + Send>> =
                    Vec::with_capacity(runs.len());
                for r in &runs {
                    sources.push(Box::new(PartReader::<BandRec>::open(r, p, buf)?));
                }
                let mut m = Merger::new(sources)?;
                while let Some((rec, _)) = m.next_record()? {
                    if rec.key < lo
                        || hi.is_some_and(|h| rec.key >= h)
                        || removed.binary_search(&rec.key).is_ok()
                    {
                        continue;
                    }
                    match cur.as_mut() {
                        Some(c) if c.hash == rec.hash => c.key = c.key.min(rec.key),
                        _ => {
                            if let Some(c) = cur.replace(IdxRec {
                                hash: rec.hash,
                                key: rec.key,
                            }) {
                                emit(c)?;
                            }
                        }
                    }
                }
            }
            if let Some(c) = cur {
                emit(c)?;
            }
            match hi {
                Some(h) => lo = h,
                None => break,
            }
        }
        if let Some(s) = sorter {
            let mut sorted = s.finish()?;
            let mut last: Option<u64> = None;
            while let Some(r) = sorted.next_record()? {
                if last != Some(r.hash) {
                    w.push(r)?;
                    last = Some(r.hash);
                }
            }
            sorted.cleanup();
            let _ = std::fs::remove_dir_all(&tmp);
        }
        w.finish()?;
        if band == 0 {
            let documents: u64 = manifests.iter().map(|m| m.documents).sum::<u64>() - removed_total;
            let meta = IndexMeta {
                format: INDEX_FORMAT.to_string(),
                params: self.hasher.params().clone(),
                documents,
                names: self.has_ids,
            };
            write_json(&dir.join("index.json"), &meta)?;
        }
        let mut c = cx.counters.lock().expect("counters");
        c.add_run("minhash_index_passes", passes as f64);
        Ok(())
    }

    /// The index's last task (with an id column): the ids of this run's survivors (every
    /// observed document with a signature that was not removed), in key order, copied from the
    /// observers' names while walking the node file.
    pub(super) fn run_index_names(&self, cx: &StageContext<'_>) -> Result<(), StepError> {
        let out = index_names_paths(&Self::index_dir(cx.dir));
        let mut copier = NamesCopier::create(&out)?;
        let mut scan = NamesScan::new(observer_names(cx.dir, cx.observed_tasks));
        let mut nodes = PartReader::<NodeRec>::open(&Self::nodes_path(cx.dir), 0, 1 << 16)?;
        let mut node = nodes.next_record()?;
        let mut buf = Vec::new();
        while let Some((key, named)) = scan.next_entry(&mut buf)? {
            while node.is_some_and(|n| n.key < key) {
                node = nodes.next_record()?;
            }
            if node.is_some_and(|n| n.key == key && n.status != KEPT) {
                continue;
            }
            copier.push(key, named.then_some(buf.as_slice()))?;
        }
        copier.finish()
    }
}
