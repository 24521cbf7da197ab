//! A symmetric sparse graph in compressed rows: the connectivities kBET's diffusion maps
//! are built on.

/// A symmetric sparse graph in compressed rows, without self-loops; 32-bit column indices.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SparseGraph {
    pub(crate) row_ptr: Vec<usize>,
    pub(crate) cols: Vec<u32>,
    pub(crate) weights: Vec<f64>,
}

impl SparseGraph {
    pub(crate) fn n(&self) -> usize {
        self.row_ptr.len() - 1
    }

    pub(crate) fn row(&self, i: usize) -> (&[u32], &[f64]) {
        let span = self.row_ptr[i]..self.row_ptr[i + 1];
        (&self.cols[span.clone()], &self.weights[span])
    }

    /// The graph induced on `cells` (ascending), renumbered 0..cells.len().
    pub(crate) fn induced(&self, cells: &[usize]) -> Self {
        let mut position = vec![usize::MAX; self.n()];
        cells.iter().enumerate().for_each(|(p, &c)| position[c] = p);
        let mut graph = Self {
            row_ptr: vec![0],
            cols: Vec::new(),
            weights: Vec::new(),
        };
        for &c in cells {
            let (cols, weights) = self.row(c);
            for (&j, &w) in cols.iter().zip(weights) {
                let p = position[j as usize];
                if p != usize::MAX {
                    graph.cols.push(p as u32);
                    graph.weights.push(w);
                }
            }
            graph.row_ptr.push(graph.cols.len());
        }
        graph
    }

    /// The connected component of every node (numbered by first node) and their count.
    pub(crate) fn components(&self) -> (Vec<usize>, usize) {
        let mut component = vec![usize::MAX; self.n()];
        let mut count = 0;
        let mut stack = Vec::new();
        for start in 0..self.n() {
            if component[start] != usize::MAX {
                continue;
            }
            component[start] = count;
            stack.push(start);
            while let Some(i) = stack.pop() {
                for &j in self.row(i).0 {
                    let j = j as usize;
                    if component[j] == usize::MAX {
                        component[j] = count;
                        stack.push(j);
                    }
                }
            }
            count += 1;
        }
        (component, count)
    }
}
