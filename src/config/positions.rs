//! Where each key and value of the YAML file is, by key path. `serde_yaml`'s `Value` keeps no positions, so the file
//! is read a second time with yaml-rust2's marked event parser; errors found on typed values are located here.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Default)]
pub struct Positions {
    keys: HashMap<Vec<String>, Pos>,
    values: HashMap<Vec<String>, Pos>,
    /// Keys written a second time in the same mapping, where the repeat is.
    duplicates: Vec<(Vec<String>, Pos)>,
}

impl Positions {
    /// Indexes `text`; a file the parser rejects yields an empty index (the syntax error is reported elsewhere).
    pub fn index(text: &str) -> Positions {
        let mut builder = Builder::default();
        let _ = Parser::new_from_str(text).load(&mut builder, false);
        builder.positions
    }

    /// Where the value at `path` starts; for a key that is the value's position, falling back to the key itself and
    /// then to the nearest ancestor that is in the file.
    pub fn value(&self, path: &[String]) -> Option<Pos> {
        self.values
            .get(path)
            .or_else(|| self.keys.get(path))
            .copied()
            .or_else(|| self.ancestor(path))
    }

    /// Where the key that ends `path` is written (for "unknown key" and "remove this key").
    pub fn key(&self, path: &[String]) -> Option<Pos> {
        self.keys.get(path).copied().or_else(|| self.value(path))
    }

    pub fn first_duplicate(&self) -> Option<&(Vec<String>, Pos)> {
        self.duplicates.first()
    }

    pub fn contains(&self, path: &[String]) -> bool {
        self.keys.contains_key(path)
    }

    fn ancestor(&self, path: &[String]) -> Option<Pos> {
        (0..path.len())
            .rev()
            .find_map(|n| self.keys.get(&path[..n]).copied())
    }
}

/// Paths deeper than this are not indexed: no config key is nearly this deep, and copying ever-longer paths for
/// every node would make a file of `[[[[…]]]]` cost time quadratic in its depth.
const MAX_INDEXED_DEPTH: usize = 32;

enum Frame {
    Map { awaiting_key: bool },
    Seq { next: usize },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    path: Vec<String>,
    positions: Positions,
}

fn pos(mark: Marker) -> Pos {
    // yaml-rust2 counts lines from 1 and columns from 0.
    Pos {
        line: mark.line(),
        col: mark.col() + 1,
    }
}

impl Builder {
    fn node(&mut self, mark: Marker, scalar: Option<&str>, container: Option<Frame>) {
        match self.stack.last_mut() {
            Some(Frame::Map { awaiting_key }) if *awaiting_key => {
                *awaiting_key = false;
                // A complex (non-scalar) key has no path of its own; it gets a placeholder segment.
                self.path.push(scalar.unwrap_or("?").to_string());
                if self.path.len() <= MAX_INDEXED_DEPTH
                    && self
                        .positions
                        .keys
                        .insert(self.path.clone(), pos(mark))
                        .is_some()
                {
                    self.positions
                        .duplicates
                        .push((self.path.clone(), pos(mark)));
                }
                if let Some(frame) = container {
                    self.stack.push(frame);
                }
                return;
            }
            Some(Frame::Seq { next }) => {
                self.path.push(next.to_string());
                *next += 1;
            }
            _ => {}
        }
        if self.path.len() <= MAX_INDEXED_DEPTH {
            self.positions.values.insert(self.path.clone(), pos(mark));
        }
        match container {
            Some(frame) => self.stack.push(frame),
            None => self.end_value(),
        }
    }

    fn end_value(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { awaiting_key }) => {
                *awaiting_key = true;
                self.path.pop();
            }
            Some(Frame::Seq { .. }) => {
                self.path.pop();
            }
            None => {}
        }
    }

    fn end_container(&mut self) {
        self.stack.pop();
        // A container used as a mapping key ends the key, not a value: its value is still to come.
        // (Beyond the indexed depth, where values are not recorded, a container always ends a value.)
        let ended_a_key = self.path.len() <= MAX_INDEXED_DEPTH
            && matches!(
                self.stack.last(),
                Some(Frame::Map {
                    awaiting_key: false
                })
            )
            && !self.positions.values.contains_key(&self.path);
        if !ended_a_key {
            self.end_value();
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(ref s, ..) => self.node(mark, Some(s), None),
            Event::Alias(_) => self.node(mark, None, None),
            Event::MappingStart(..) => {
                self.node(mark, None, Some(Frame::Map { awaiting_key: true }));
            }
            Event::SequenceStart(..) => self.node(mark, None, Some(Frame::Seq { next: 0 })),
            Event::MappingEnd | Event::SequenceEnd => self.end_container(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        if s.is_empty() {
            vec![]
        } else {
            s.split('.').map(String::from).collect()
        }
    }

    #[test]
    fn finds_keys_and_values_in_block_and_flow_style() {
        let text = "project: chat\nbackend:\n  url: http://x\nstages:\n  prod:\n    backend: { url: https://y }\nlist:\n  - a\n  - b: 1\n";
        let ix = Positions::index(text);
        assert_eq!(ix.key(&p("project")), Some(Pos { line: 1, col: 1 }));
        assert_eq!(ix.value(&p("project")), Some(Pos { line: 1, col: 10 }));
        assert_eq!(ix.value(&p("backend.url")), Some(Pos { line: 3, col: 8 }));
        assert_eq!(
            ix.key(&p("stages.prod.backend.url")),
            Some(Pos { line: 6, col: 16 })
        );
        assert_eq!(
            ix.value(&p("stages.prod.backend.url")),
            Some(Pos { line: 6, col: 21 })
        );
        assert_eq!(ix.value(&p("list.1.b")), Some(Pos { line: 9, col: 8 }));
        // A path the file does not have falls back to its nearest ancestor.
        assert_eq!(
            ix.value(&p("stages.prod.region")),
            Some(Pos { line: 5, col: 3 })
        );
        assert!(ix.contains(&p("stages.prod.backend")));
        assert!(!ix.contains(&p("stages.prod.region")));
    }
}
