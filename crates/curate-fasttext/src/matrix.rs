//! The input and output matrices: dense, or product-quantized (fastText's `QuantMatrix`, with
//! optionally quantized row norms). The arithmetic follows fastText's order of operations in
//! `f32`, so sums round exactly as fastText's do.

use crate::error::LoadError;
use crate::read::Reader;

/// Centroids per sub-quantizer (8-bit codes).
const KSUB: usize = 256;

#[derive(Debug)]
pub(crate) enum Matrix {
    Dense(Dense),
    Quant(Box<Quant>),
}

#[derive(Debug)]
pub(crate) struct Dense {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) data: Vec<f32>,
}

/// A product quantizer: `nsubq` sub-vectors of `dsub` values (the last of `lastdsub`), each
/// coded by one byte into 256 centroids.
#[derive(Debug, Clone)]
struct Pq {
    nsubq: usize,
    dsub: usize,
    lastdsub: usize,
    centroids: Vec<f32>,
}

#[derive(Debug)]
pub(crate) struct Quant {
    rows: usize,
    cols: usize,
    codes: Vec<u8>,
    pq: Pq,
    /// Row norms: one code per row into a one-dimensional quantizer.
    norms: Option<(Vec<u8>, Pq)>,
}

fn dims(r: &mut Reader<'_>, what: &'static str) -> Result<(usize, usize), LoadError> {
    let m = r.i64(what)?;
    let n = r.i64(what)?;
    if m < 0 || n < 0 {
        return Err(LoadError::invalid(what, format!("{m} × {n}")));
    }
    Ok((m as usize, n as usize))
}

impl Matrix {
    pub(crate) fn load(
        r: &mut Reader<'_>,
        quantized: bool,
        what: &'static str,
    ) -> Result<Self, LoadError> {
        if !quantized {
            let (rows, cols) = dims(r, what)?;
            let n = rows
                .checked_mul(cols)
                .ok_or_else(|| LoadError::invalid(what, format!("{rows} × {cols} overflows")))?;
            let data = r.f32s(n, what)?;
            return Ok(Matrix::Dense(Dense { rows, cols, data }));
        }
        let qnorm = r.bool(what)?;
        let (rows, cols) = dims(r, what)?;
        let codesize = r.i32(what)?;
        if codesize < 0 {
            return Err(LoadError::invalid(what, format!("code size {codesize}")));
        }
        let codes = r.take(codesize as usize, what)?.to_vec();
        let pq = Pq::load(r, what)?;
        if pq.dim() != cols || codesize as usize != rows * pq.nsubq {
            return Err(LoadError::invalid(
                what,
                format!(
                    "{rows} × {cols} matrix with {codesize} code bytes and a quantizer of \
                     dimension {} in {} parts",
                    pq.dim(),
                    pq.nsubq
                ),
            ));
        }
        let norms = if qnorm {
            let codes = r.take(rows, what)?.to_vec();
            let npq = Pq::load(r, what)?;
            if npq.dim() != 1 {
                return Err(LoadError::invalid(
                    what,
                    format!("norm quantizer of dimension {}", npq.dim()),
                ));
            }
            Some((codes, npq))
        } else {
            None
        };
        Ok(Matrix::Quant(Box::new(Quant {
            rows,
            cols,
            codes,
            pq,
            norms,
        })))
    }

    /// A quantized matrix of at most `max_values` values decoded to a dense one, row `i` holding
    /// `norm(i) · centroid` per value: the very products fastText adds, so sums of decoded rows
    /// round as fastText's do. Saves the decoding on every use of a row.
    pub(crate) fn decoded(self, max_values: usize) -> Self {
        let Matrix::Quant(q) = self else {
            return self;
        };
        if q.rows.saturating_mul(q.cols) > max_values {
            return Matrix::Quant(q);
        }
        let mut data = Vec::with_capacity(q.rows * q.cols);
        let mut row = vec![0.0f32; q.cols];
        for i in 0..q.rows {
            row.fill(0.0);
            q.pq.add_code(&mut row, &q.codes, i, q.norm(i));
            data.extend_from_slice(&row);
        }
        Matrix::Dense(Dense {
            rows: q.rows,
            cols: q.cols,
            data,
        })
    }

    /// The matrix whose rows are rows `0..head` of this one, then row `head + tail[r]` for each
    /// `r` (every index checked by the caller to lie below [`Self::rows`]): the very values,
    /// renumbered. A pruned model's n-gram rows are stored in its bucket order with it, so a
    /// kept bucket's row number is its rank among the kept buckets, with no table to look it up.
    pub(crate) fn gathered(&self, head: usize, tail: &[i32]) -> Self {
        let src = (0..head).chain(tail.iter().map(|&t| head + t as usize));
        match self {
            Matrix::Dense(d) => {
                let mut data = Vec::with_capacity((head + tail.len()) * d.cols);
                for i in src {
                    data.extend_from_slice(&d.data[i * d.cols..(i + 1) * d.cols]);
                }
                Matrix::Dense(Dense {
                    rows: head + tail.len(),
                    cols: d.cols,
                    data,
                })
            }
            Matrix::Quant(q) => {
                let n = q.pq.nsubq;
                let mut codes = Vec::with_capacity((head + tail.len()) * n);
                let mut norm_codes = Vec::with_capacity(head + tail.len());
                for i in src {
                    codes.extend_from_slice(&q.codes[i * n..(i + 1) * n]);
                    if let Some((c, _)) = &q.norms {
                        norm_codes.push(c[i]);
                    }
                }
                Matrix::Quant(Box::new(Quant {
                    rows: head + tail.len(),
                    cols: q.cols,
                    codes,
                    pq: q.pq.clone(),
                    norms: q.norms.as_ref().map(|(_, npq)| (norm_codes, npq.clone())),
                }))
            }
        }
    }

    pub(crate) fn rows(&self) -> usize {
        match self {
            Matrix::Dense(d) => d.rows,
            Matrix::Quant(q) => q.rows,
        }
    }

    pub(crate) fn cols(&self) -> usize {
        match self {
            Matrix::Dense(d) => d.cols,
            Matrix::Quant(q) => q.cols,
        }
    }

    /// Adds rows `ids` to `acc` in order (fastText's `computeHidden`, a batch of its rows at a
    /// time: `first` for the line's first batch, which starts the sum). Splitting a line's rows
    /// into batches changes no addition, so the sum is bit-identical to one over all of them.
    pub(crate) fn add_rows(&self, ids: &[i32], acc: &mut [f32], first: bool) {
        if ids.is_empty() {
            return;
        }
        match self {
            Matrix::Dense(d) if d.cols == 16 => add_dense::<16>(&d.data, ids, acc, first),
            Matrix::Dense(d) => {
                let n = d.cols;
                let rest = if first {
                    let s = ids[0] as usize * n;
                    acc.copy_from_slice(&d.data[s..s + n]);
                    &ids[1..]
                } else {
                    ids
                };
                for &id in rest {
                    let s = id as usize * n;
                    for (o, v) in acc.iter_mut().zip(&d.data[s..s + n]) {
                        *o += *v;
                    }
                }
            }
            Matrix::Quant(q) => {
                if first {
                    acc.fill(0.0);
                }
                for &id in ids {
                    let id = id as usize;
                    q.pq.add_code(acc, &q.codes, id, q.norm(id));
                }
            }
        }
    }

    /// The sum of [`Self::add_rows`] over `rows` rows made their mean (`× (1 / rows)`, the
    /// factor rounded as fastText's `1.0 / input.size()` is).
    pub(crate) fn mean(acc: &mut [f32], rows: usize) {
        let scale = (1.0f64 / rows as f64) as f32;
        for o in acc.iter_mut() {
            *o *= scale;
        }
    }

    /// Row `i` · `v`, summed in order (fastText's `dotRow`).
    pub(crate) fn dot_row(&self, v: &[f32], i: usize) -> f32 {
        match self {
            Matrix::Dense(d) => {
                let n = d.cols;
                let mut s = 0.0f32;
                for (a, b) in d.data[i * n..(i + 1) * n].iter().zip(v) {
                    s += *a * *b;
                }
                s
            }
            Matrix::Quant(q) => q.pq.mul_code(v, &q.codes, i, q.norm(i)),
        }
    }
}

/// [`Matrix::add_rows`] for a dense matrix with `N` columns: `out` (or, for the first batch,
/// the first row) plus rows `ids` in order, lane by lane (the very additions of the generic
/// loop), with the row length known to the compiler (lid.176: 16 floats, four vector additions
/// per row).
#[inline]
fn add_dense<const N: usize>(data: &[f32], ids: &[i32], out: &mut [f32], first: bool) {
    let row = |id: i32| -> &[f32; N] {
        let s = id as usize * N;
        data[s..s + N].try_into().unwrap()
    };
    let (mut acc, rest) = if first {
        (*row(ids[0]), &ids[1..])
    } else {
        (<[f32; N]>::try_from(&out[..N]).unwrap(), ids)
    };
    for &id in rest {
        let r = row(id);
        for j in 0..N {
            acc[j] += r[j];
        }
    }
    out.copy_from_slice(&acc);
}

impl Quant {
    #[inline]
    fn norm(&self, row: usize) -> f32 {
        match &self.norms {
            Some((codes, npq)) => npq.centroid(0, codes[row])[0],
            None => 1.0,
        }
    }
}

impl Pq {
    fn load(r: &mut Reader<'_>, what: &'static str) -> Result<Self, LoadError> {
        let dim = r.i32(what)?;
        let nsubq = r.i32(what)?;
        let dsub = r.i32(what)?;
        let lastdsub = r.i32(what)?;
        // As fastText's ProductQuantizer(dim, dsub) derives them.
        let ok = dim > 0
            && dsub > 0
            && nsubq == (dim + dsub - 1) / dsub
            && lastdsub == dim - (nsubq - 1) * dsub;
        if !ok {
            return Err(LoadError::invalid(
                what,
                format!(
                    "product quantizer of dimension {dim} with {nsubq} parts of {dsub} (last \
                     {lastdsub})"
                ),
            ));
        }
        let centroids = r.f32s(dim as usize * KSUB, what)?;
        Ok(Pq {
            nsubq: nsubq as usize,
            dsub: dsub as usize,
            lastdsub: lastdsub as usize,
            centroids,
        })
    }

    fn dim(&self) -> usize {
        (self.nsubq - 1) * self.dsub + self.lastdsub
    }

    #[inline]
    fn centroid(&self, m: usize, code: u8) -> &[f32] {
        let code = code as usize;
        if m == self.nsubq - 1 {
            let s = m * KSUB * self.dsub + code * self.lastdsub;
            &self.centroids[s..s + self.lastdsub]
        } else {
            let s = (m * KSUB + code) * self.dsub;
            &self.centroids[s..s + self.dsub]
        }
    }

    /// `x += alpha · decode(row t)`.
    #[inline]
    fn add_code(&self, x: &mut [f32], codes: &[u8], t: usize, alpha: f32) {
        let code = &codes[self.nsubq * t..self.nsubq * (t + 1)];
        for (m, &c) in code.iter().enumerate() {
            let cent = self.centroid(m, c);
            let xs = &mut x[m * self.dsub..m * self.dsub + cent.len()];
            for (o, v) in xs.iter_mut().zip(cent) {
                *o += alpha * *v;
            }
        }
    }

    /// `(x · decode(row t)) · alpha`, summed in order.
    #[inline]
    fn mul_code(&self, x: &[f32], codes: &[u8], t: usize, alpha: f32) -> f32 {
        let code = &codes[self.nsubq * t..self.nsubq * (t + 1)];
        let mut res = 0.0f32;
        for (m, &c) in code.iter().enumerate() {
            let cent = self.centroid(m, c);
            for (a, b) in x[m * self.dsub..].iter().zip(cent) {
                res += *a * *b;
            }
        }
        res * alpha
    }
}
