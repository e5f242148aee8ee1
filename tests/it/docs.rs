//! The README and the guide (docs/) as a reader follows them: every relative link and anchor resolves, every page of
//! the guide is linked from the README and from the guide's index, and the README stays a page, not a manual.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Markdown a reader of the repository meets: the README, the design, and every page of the guide.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md"), root().join("ARCHITECTURE.md")];
    let mut guide: Vec<_> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    guide.sort();
    pages.extend(guide);
    pages
}

/// A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens (hand-written: no
/// crate does GitHub's exact rule). A repeated heading gets `-1`, `-2`, …
fn slug(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_lowercase().next()?),
            _ => None,
        })
        .collect()
}

struct Page {
    anchors: BTreeSet<String>,
    links: Vec<String>,
}

fn read_page(path: &Path) -> Page {
    let text = std::fs::read_to_string(path).unwrap();
    let mut anchors = BTreeSet::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut links = vec![];
    let mut heading: Option<String> = None;
    for event in Parser::new(&text) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let base = slug(&heading.take().unwrap_or_default());
                let n = seen.entry(base.clone()).or_default();
                anchors.insert(if *n == 0 { base } else { format!("{base}-{n}") });
                *n += 1;
            }
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                links.push(dest_url.to_string());
            }
            _ => {}
        }
    }
    Page { anchors, links }
}

fn shown(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let read: BTreeMap<PathBuf, Page> = pages()
        .into_iter()
        .map(|p| (p.clone(), read_page(&p)))
        .collect();
    let mut broken = vec![];
    let mut checked = 0;
    for (path, page) in &read {
        for link in &page.links {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, anchor) = link.split_once('#').unwrap_or((link, ""));
            let target = if file.is_empty() {
                path.clone()
            } else {
                path.parent().unwrap().join(file)
            };
            let Ok(target) = target.canonicalize() else {
                broken.push(format!("{}: `{link}`: no such file", shown(path)));
                continue;
            };
            if anchor.is_empty() {
                continue;
            }
            let anchors = match read.get(&target) {
                Some(p) => &p.anchors,
                None => &read_page(&target).anchors,
            };
            if !anchors.contains(anchor) {
                broken.push(format!(
                    "{}: `{link}`: {} has no heading `#{anchor}` (it has: {})",
                    shown(path),
                    shown(&target),
                    anchors.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} relative links found: is the parser reading the pages?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_page_of_the_guide_is_linked_from_the_readme_and_the_index() {
    let docs = root().join("docs").canonicalize().unwrap();
    let linked = |from: &Path| -> BTreeSet<PathBuf> {
        read_page(from)
            .links
            .iter()
            .filter(|l| !l.contains("://"))
            .filter_map(|l| {
                from.parent()
                    .unwrap()
                    .join(l.split('#').next().unwrap())
                    .canonicalize()
                    .ok()
            })
            .collect()
    };
    let from_readme = linked(&root().join("README.md"));
    let from_index = linked(&docs.join("README.md"));
    for page in pages()
        .iter()
        .filter(|p| p.starts_with(root().join("docs")))
    {
        let page = page.canonicalize().unwrap();
        assert!(
            from_readme.contains(&page),
            "README.md does not link {}",
            shown(&page)
        );
        if page != docs.join("README.md") {
            assert!(
                from_index.contains(&page),
                "docs/README.md does not link {}",
                shown(&page)
            );
        }
    }
}

#[test]
fn the_readme_is_a_page_not_a_manual() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines < 250,
        "README.md has {lines} lines: move the detail into a page of docs/ and link it"
    );
    // Its top-level sections, in order: what it is, try it, use it, the verbs, where to read on.
    let sections: Vec<String> = {
        let mut out = vec![];
        let mut current: Option<String> = None;
        for event in Parser::new(&readme) {
            match event {
                Event::Start(Tag::Heading {
                    level: HeadingLevel::H2,
                    ..
                }) => current = Some(String::new()),
                Event::Text(t) | Event::Code(t) => {
                    if let Some(c) = current.as_mut() {
                        c.push_str(&t);
                    }
                }
                Event::End(TagEnd::Heading(HeadingLevel::H2)) => out.extend(current.take()),
                _ => {}
            }
        }
        out
    };
    assert_eq!(
        sections,
        [
            "Try it now: the chat example, no AWS account",
            "The two commands",
            "Use it in your app",
            "Commands",
            "Read on"
        ],
        "README.md's sections changed: keep the first screen short"
    );
    // Channels that exist only from the first release are never how to start.
    for paragraph in readme
        .split("\n\n")
        .filter(|p| p.contains("npx wsdeploy") || p.contains("cargo binstall"))
    {
        assert!(
            paragraph.contains("Once published") || paragraph.contains("once published"),
            "README.md offers a channel that does not exist yet as if it did:\n{paragraph}"
        );
    }
}
