//! Every name of one version of a zone, shared with the versions around it.
//!
//! A version loaded whole has all of its names in one map (the base). A version loaded as a
//! patch of the one before ([`Nodes::patched`]) shares that base and the layers above it,
//! and adds one layer holding the names it changed, so a change of a few names costs a few
//! names, not the zone. Off the path to the wire the follower merges the layers into one
//! ([`Nodes::merged`]), and into a new base once they outgrow [`OVERLAY_SHARE`] of it.

use std::sync::Arc;

use model::{Name, Record, RecordType};

pub(crate) use crate::hashing::NameMap;

/// The overlay is merged into the base when it holds more than 1/`OVERLAY_SHARE` of the
/// base's names (and more than [`OVERLAY_FLOOR`]).
pub const OVERLAY_SHARE: usize = 16;

/// Overlays up to this many names are never worth merging.
pub const OVERLAY_FLOOR: usize = 4_096;

/// The records of one owner name, grouped by type in ascending type order.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Node {
    /// Ready-made records per type; each set non-empty.
    pub(crate) rrsets: Vec<(RecordType, Vec<Record>)>,
    /// NS records at a name below the apex: a zone cut (delegation point).
    pub(crate) is_cut: bool,
    /// Names directly below this one that exist (with data or as empty non-terminals):
    /// an empty non-terminal without children stops existing.
    pub(crate) children: u32,
}

impl Node {
    pub(crate) fn rrset(&self, rtype: RecordType) -> Option<&[Record]> {
        self.rrsets
            .iter()
            .find(|(t, _)| *t == rtype)
            .map(|(_, records)| records.as_slice())
    }

    /// A node holding `sets`, a cut when it holds NS below the apex.
    fn holding(sets: Vec<(RecordType, Vec<Record>)>, at_apex: bool, children: u32) -> Node {
        let mut rrsets: Vec<(RecordType, Vec<Record>)> =
            sets.into_iter().filter(|(_, r)| !r.is_empty()).collect();
        rrsets.sort_by_key(|(rtype, _)| u16::from(*rtype));
        Node {
            is_cut: !at_apex && rrsets.iter().any(|(t, _)| *t == RecordType::NS),
            rrsets,
            children,
        }
    }
}

/// Names changed by one patch: `None` for a name that no longer exists.
type Layer = NameMap<Option<Arc<Node>>>;

/// The names of one version: see the module documentation. Cloning is cheap.
#[derive(Debug, Clone, Default)]
pub(crate) struct Nodes {
    base: Arc<NameMap<Node>>,
    /// Names changed since the base was built, newest layer first.
    layers: Vec<Arc<Layer>>,
}

impl Nodes {
    /// All names of a version from its record sets (owner names as keys, lower-cased and
    /// fully qualified), with the empty non-terminals between them and `origin`.
    pub(crate) fn build(
        origin: &Name,
        sets: impl IntoIterator<Item = (Name, RecordType, Vec<Record>)>,
    ) -> Nodes {
        let mut nodes: NameMap<Node> = NameMap::default();
        nodes.insert(origin.clone(), Node::default());
        for (owner, rtype, records) in sets {
            if records.is_empty() {
                continue;
            }
            let mut ancestor = owner.base_name();
            while ancestor.num_labels() > origin.num_labels() {
                nodes.entry(ancestor.clone()).or_default();
                ancestor = ancestor.base_name();
            }
            let node = nodes.entry(owner.clone()).or_default();
            if rtype == RecordType::NS && owner != *origin {
                node.is_cut = true;
            }
            node.rrsets.push((rtype, records));
        }
        let parents: Vec<Name> = nodes
            .keys()
            .filter(|name| *name != origin)
            .map(Name::base_name)
            .collect();
        for parent in parents {
            if let Some(node) = nodes.get_mut(&parent) {
                node.children += 1;
            }
        }
        for node in nodes.values_mut() {
            node.rrsets.sort_by_key(|(rtype, _)| u16::from(*rtype));
        }
        Nodes {
            base: Arc::new(nodes),
            layers: Vec::new(),
        }
    }

    pub(crate) fn get(&self, key: &Name) -> Option<&Node> {
        for layer in &self.layers {
            if let Some(changed) = layer.get(key) {
                return changed.as_deref();
            }
        }
        self.base.get(key)
    }

    /// The same names in a new base without layers.
    pub(crate) fn rebased(&self) -> Nodes {
        let mut base = NameMap::with_capacity_and_hasher(self.base.len(), Default::default());
        for (name, node) in self.iter() {
            base.insert(name.clone(), node.clone());
        }
        Nodes {
            base: Arc::new(base),
            layers: Vec::new(),
        }
    }

    /// Whether a layer newer than the `older`-th (or any, for the base) changed `key`.
    fn shadowed(&self, key: &Name, older: usize) -> bool {
        self.layers[..older]
            .iter()
            .any(|layer| layer.contains_key(key))
    }

    /// Every name with its node, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Name, &Node)> {
        let depth = self.layers.len();
        let base = self
            .base
            .iter()
            .filter(move |(name, _)| depth == 0 || !self.shadowed(name, depth));
        let layers = self
            .layers
            .iter()
            .enumerate()
            .flat_map(move |(index, layer)| {
                layer.iter().filter_map(move |(name, node)| {
                    let node = node.as_deref()?;
                    (!self.shadowed(name, index)).then_some((name, node))
                })
            });
        base.chain(layers)
    }

    /// The names the newest patch changed (none for names built whole).
    pub(crate) fn newest_layer_names(&self) -> Vec<Name> {
        self.layers
            .first()
            .map(|layer| layer.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Names in the base (some may have changed since).
    pub(crate) fn base_len(&self) -> usize {
        self.base.len()
    }

    /// Names changed since the base was built (counted once per layer).
    pub(crate) fn overlay_len(&self) -> usize {
        self.layers.iter().map(|layer| layer.len()).sum()
    }

    /// Whether merging would help: more than one layer, or layers large enough to be merged
    /// into the base.
    pub(crate) fn wants_merge(&self) -> bool {
        self.layers.len() > 1 || self.wants_new_base()
    }

    fn wants_new_base(&self) -> bool {
        let overlay = self.overlay_len();
        overlay > OVERLAY_FLOOR && overlay * OVERLAY_SHARE > self.base.len()
    }

    /// The same names with the layers merged into one, or into a new base when they have
    /// grown large (which costs the whole zone).
    pub(crate) fn merged(&self) -> Nodes {
        if self.wants_new_base() {
            return self.rebased();
        }
        let mut layer = Layer::default();
        for older in self.layers.iter().rev() {
            for (name, node) in older.iter() {
                layer.insert(name.clone(), node.clone());
            }
        }
        Nodes {
            base: Arc::clone(&self.base),
            layers: if layer.is_empty() {
                Vec::new()
            } else {
                vec![Arc::new(layer)]
            },
        }
    }

    /// These names with each of `changed` (keys) holding exactly its sets (none: the name
    /// loses its data; it stays as an empty non-terminal while names below it exist).
    /// Empty non-terminals above new names appear, those left without children go.
    pub(crate) fn patched(
        &self,
        origin: &Name,
        changed: impl IntoIterator<Item = (Name, Vec<(RecordType, Vec<Record>)>)>,
    ) -> Nodes {
        let mut patch = Patch {
            nodes: self,
            layer: Layer::default(),
            origin,
        };
        for (name, sets) in changed {
            patch.set(name, sets);
        }
        let mut layers = Vec::with_capacity(self.layers.len() + 1);
        layers.push(Arc::new(patch.layer));
        layers.extend(self.layers.iter().cloned());
        Nodes {
            base: Arc::clone(&self.base),
            layers,
        }
    }
}

/// A patch in progress: reads see the changes made so far.
struct Patch<'a> {
    nodes: &'a Nodes,
    layer: Layer,
    origin: &'a Name,
}

impl Patch<'_> {
    fn get(&self, key: &Name) -> Option<&Node> {
        match self.layer.get(key) {
            Some(changed) => changed.as_deref(),
            None => self.nodes.get(key),
        }
    }

    fn set(&mut self, name: Name, sets: Vec<(RecordType, Vec<Record>)>) {
        let at_apex = name == *self.origin;
        let existing = self.get(&name).map(|node| node.children);
        let node = Node::holding(sets, at_apex, existing.unwrap_or(0));
        match existing {
            _ if !node.rrsets.is_empty() || at_apex => {
                self.layer.insert(name.clone(), Some(Arc::new(node)));
                if existing.is_none() {
                    self.add_child(&name);
                }
            }
            None => {}
            Some(children) if children > 0 => {
                self.layer.insert(name, Some(Arc::new(node)));
            }
            Some(_) => self.remove(name),
        }
    }

    /// A new name below `parent`'s child `name`: the parent counts it, or appears as an
    /// empty non-terminal (and so on up to the apex).
    fn add_child(&mut self, name: &Name) {
        if name == self.origin {
            return;
        }
        let parent = name.base_name();
        match self.get(&parent).cloned() {
            Some(mut node) => {
                node.children += 1;
                self.layer.insert(parent, Some(Arc::new(node)));
            }
            None => {
                let node = Node {
                    children: 1,
                    ..Node::default()
                };
                self.layer.insert(parent.clone(), Some(Arc::new(node)));
                self.add_child(&parent);
            }
        }
    }

    /// `name` (childless, without data) stops existing; a parent left an empty
    /// non-terminal without children goes too.
    fn remove(&mut self, name: Name) {
        let parent = name.base_name();
        self.layer.insert(name, None);
        let Some(mut node) = self.get(&parent).cloned() else {
            return;
        };
        node.children = node.children.saturating_sub(1);
        if node.children == 0 && node.rrsets.is_empty() && parent != *self.origin {
            self.remove(parent);
        } else {
            self.layer.insert(parent, Some(Arc::new(node)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::NameHasher;
    use std::hash::{BuildHasher, BuildHasherDefault};

    fn hash(name: &str) -> u64 {
        BuildHasherDefault::<NameHasher>::default()
            .hash_one(Name::from_ascii(name).expect("test names are valid"))
    }

    #[test]
    fn names_that_differ_only_in_case_hash_alike_and_host_names_do_not_collide() {
        assert_eq!(hash("WWW.Example.TEST."), hash("www.example.test."));
        let hashes: std::collections::HashSet<u64> = (0..100_000)
            .map(|host| hash(&format!("host{host}.bench.test.")))
            .collect();
        assert_eq!(hashes.len(), 100_000);
    }
}
