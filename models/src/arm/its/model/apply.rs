//! The ITS executing one command against its tables (device table, ITTs, collections, vPE
//! table), as the architecture defines each command's effect; an invalid command changes
//! nothing and is counted.

use std::collections::BTreeMap;

use super::super::cmdq::ItsCommand;
use super::super::{EventId, GicVersion, ItsDeviceId};
use super::{HwDevice, Ite, Its};

impl Its {
    /// The ITS executes `cmd` against its tables.
    // Long: one flat arm per ITS command kind, each a few lines; splitting it would scatter the command set.
    pub(super) fn apply(&mut self, cmd: &ItsCommand) {
        let v4 = self.params.gic_version.has_vlpis();
        let ok = match *cmd {
            ItsCommand::Mapd { device, itt_entries, valid } => {
                if valid {
                    self.hw_devices.insert(device.0, HwDevice { itt_entries, ites: BTreeMap::new() });
                } else {
                    self.hw_devices.remove(&device.0);
                }
                true
            }
            ItsCommand::Mapc { collection, target, valid } => {
                match self.hw_collections.get_mut(collection.0 as usize) {
                    Some(slot) if target.0 < self.params.collections => {
                        *slot = valid.then_some(target);
                        true
                    }
                    _ => false,
                }
            }
            ItsCommand::Mapti { device, event, lpi, collection } => {
                let col_ok = collection.0 < self.params.collections;
                self.insert_ite(device, event, col_ok, Ite::Physical { lpi: lpi.0, collection: collection.0 })
            }
            ItsCommand::Movi { device, event, collection } => {
                let col_ok = collection.0 < self.params.collections;
                match self.hw_devices.get_mut(&device.0).and_then(|d| d.ites.get_mut(&event.0)) {
                    Some(Ite::Physical { collection: c, .. }) if col_ok => {
                        *c = collection.0;
                        true
                    }
                    _ => false,
                }
            }
            ItsCommand::Inv { device, event } => match self.hw_ite(device, event) {
                Some(Ite::Physical { lpi, .. }) => {
                    self.refresh_prop(lpi);
                    true
                }
                Some(Ite::Virtual { .. }) => true,
                None => false,
            },
            ItsCommand::Discard { device, event } => {
                match self.hw_devices.get_mut(&device.0).and_then(|d| d.ites.remove(&event.0)) {
                    Some(Ite::Physical { lpi, .. }) => {
                        self.pending_masked.remove(&lpi);
                        true
                    }
                    Some(Ite::Virtual { .. }) => true,
                    None => false,
                }
            }
            ItsCommand::Clear { device, event } => match self.hw_ite(device, event) {
                Some(Ite::Physical { lpi, .. }) => {
                    self.pending_masked.remove(&lpi);
                    true
                }
                Some(Ite::Virtual { .. }) => true,
                None => false,
            },
            ItsCommand::Invall { collection } => {
                let lpis: Vec<u32> = self
                    .hw_devices
                    .values()
                    .flat_map(|d| d.ites.values())
                    .filter_map(|ite| match *ite {
                        Ite::Physical { lpi, collection: c } if c == collection.0 => Some(lpi),
                        _ => None,
                    })
                    .collect();
                for lpi in lpis {
                    self.refresh_prop(lpi);
                }
                collection.0 < self.params.collections
            }
            ItsCommand::Sync { collection } => collection.0 < self.params.collections,
            ItsCommand::Vsync { vpe } | ItsCommand::Vinvall { vpe } => v4 && self.hw_vpes.contains_key(&vpe.0),
            ItsCommand::Vmapp { vpe, target, valid } => {
                let ok = v4 && target.0 < self.params.collections && (vpe.0 as usize) < self.vpes.len();
                if ok {
                    if valid {
                        self.hw_vpes.insert(vpe.0, target);
                    } else {
                        self.hw_vpes.remove(&vpe.0);
                    }
                }
                ok
            }
            ItsCommand::Vmapti { device, event, vpe, vintid, doorbell } => {
                let vpe_ok = v4 && self.hw_vpes.contains_key(&vpe.0);
                self.insert_ite(device, event, vpe_ok, Ite::Virtual { vpe, vintid, doorbell })
            }
            ItsCommand::Vmovi { device, event, vpe, doorbell } => {
                let vpe_ok = v4 && self.hw_vpes.contains_key(&vpe.0);
                match self.hw_devices.get_mut(&device.0).and_then(|d| d.ites.get_mut(&event.0)) {
                    Some(Ite::Virtual { vpe: v, doorbell: db, .. }) if vpe_ok => {
                        *v = vpe;
                        *db = doorbell;
                        true
                    }
                    _ => false,
                }
            }
            ItsCommand::Vmovp { vpe, target } => match self.hw_vpes.get_mut(&vpe.0) {
                Some(t) if v4 && target.0 < self.params.collections => {
                    *t = target;
                    true
                }
                _ => false,
            },
            ItsCommand::Invdb { vpe } => {
                let ok = self.params.gic_version == GicVersion::V4_1 && self.hw_vpes.contains_key(&vpe.0);
                if ok {
                    let db = self.vpes[vpe.0 as usize].doorbell;
                    self.refresh_prop(db);
                }
                ok
            }
        };
        if !ok {
            self.stats.command_errors += 1;
        }
    }

    fn insert_ite(&mut self, device: ItsDeviceId, event: EventId, target_ok: bool, ite: Ite) -> bool {
        match self.hw_devices.get_mut(&device.0) {
            Some(d) if target_ok && event.0 < d.itt_entries => {
                d.ites.insert(event.0, ite);
                true
            }
            _ => false,
        }
    }
}
