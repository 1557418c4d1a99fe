//! The matrix as `irq_matrix_debug_show` prints it in
//! `/sys/kernel/debug/irq/domains/VECTOR`
//! ([`VectorMatrix::debug_table`]), and its per-CPU rows as data
//! ([`VectorMatrix::debug_rows`]).

use super::VectorMatrix;
use crate::x86::vector_matrix::cpuset::bitmap_list;

impl VectorMatrix {
    /// The allocator as `irq_matrix_debug_show` prints it in
    /// `/sys/kernel/debug/irq/domains/VECTOR` (indentation 1): four global
    /// lines, the system vectors, then one row per online CPU with `avl`
    /// (available), `man` (managed), `mac` (managed allocated), `act`
    /// (allocated) and the allocated vectors.
    pub fn debug_table(&self) -> String {
        let ind = 1;
        let mut out = String::new();
        out.push_str(&format!("Online bitmaps:   {:6}\n", self.online_maps));
        out.push_str(&format!("Global available: {:6}\n", self.global_available));
        out.push_str(&format!("Global reserved:  {:6}\n", self.global_reserved));
        out.push_str(&format!("Total allocated:  {:6}\n", self.total_allocated));
        out.push_str(&format!("System: {}: {}\n", self.system_map.weight(), bitmap_list(self.system_map.iter())));
        out.push_str(&format!("{:>ind$}| CPU | avl | man | mac | act | vectors\n", " "));
        for (cpu, cm) in self.maps.iter().enumerate().filter(|(_, cm)| cm.online) {
            out.push_str(&format!(
                "{:>ind$} {:4}  {:4}  {:4}  {:4} {:4}  {}\n",
                " ",
                cpu,
                cm.available,
                cm.managed,
                cm.managed_allocated,
                cm.allocated,
                bitmap_list(cm.alloc_map.iter())
            ));
        }
        out
    }

    /// The per-CPU rows of [`VectorMatrix::debug_table`] as data: the column names and one
    /// row per online CPU (CPU number, available, managed, managed allocated, allocated, and
    /// the allocated vectors as a bitmap list such as `32-39,48`).
    pub fn debug_rows(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let columns = ["cpu", "available", "managed", "managed_allocated", "allocated", "vectors"];
        let rows = self
            .maps
            .iter()
            .enumerate()
            .filter(|(_, cm)| cm.online)
            .map(|(cpu, cm)| {
                vec![
                    cpu.to_string(),
                    cm.available.to_string(),
                    cm.managed.to_string(),
                    cm.managed_allocated.to_string(),
                    cm.allocated.to_string(),
                    bitmap_list(cm.alloc_map.iter()),
                ]
            })
            .collect();
        (columns.iter().map(|c| (*c).to_owned()).collect(), rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x86::vector_matrix::KernelEra;
    use crate::x86::vector_matrix::testutil::{check, cpus, params};

    #[test]
    fn debug_table_matches_the_kernel_layout() {
        let mut matrix = VectorMatrix::new(params(2, KernelEra::From6_10, true));
        let all = cpus(&[0, 1]);
        matrix.alloc(&all, false).expect("alloc");
        matrix.alloc(&all, false).expect("alloc");
        matrix.reserve_managed(&cpus(&[1])).expect("reserve_managed");
        matrix.alloc_managed(&cpus(&[1])).expect("alloc_managed");
        check(&matrix);
        let expected = "\
Online bitmaps:        2
Global available:    384
Global reserved:       0
Total allocated:      18
System: 38: 0-19,50,128,235-236,240-242,244,246-255
 | CPU | avl | man | mac | act | vectors
     0   186     0     0   15  48-49,51-63
     1   198     1     1    3  32-34
";
        assert_eq!(matrix.debug_table(), expected);
        // The ≤ 6.5 layout of a public dump: "System: 38: 0-19,32,50,128,236,240-242,244,246-255".
        let old = VectorMatrix::new(params(1, KernelEra::UpTo6_5, true));
        assert!(old.debug_table().contains("System: 38: 0-19,32,50,128,236,240-242,244,246-255\n"));
    }
}
