//! ARM interrupt delivery: the GICv3/v4 ITS (LPIs, device tables, the command queue, direct
//! vLPI injection) and the GICv2m MSI frame.

pub mod its;
