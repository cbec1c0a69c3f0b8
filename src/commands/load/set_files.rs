//! The files of a rule file's dynamic sets as `pfc load` reads them: a set file's text in,
//! the set's element keys out, in the order the runtime writes them (`trie_order`),
//! each once.
//!
//! A dynamic set's elements do not change the program, so `pfc load` leaves the lines of
//! its file to this module ([`crate::source::read_deferring_dynamic_sets`]) and reads them
//! while the rule file compiles. A block list is read in as many pieces as there are
//! cores (cut at line ends), each piece decoded
//! ([`pfc_compiler::syntax::plain_prefixes`]: every line as the full read decodes it, but
//! no span or diagnostic per line) and sorted on its own thread; the sorted pieces are
//! then merged and repeats dropped (a sort finds them: no table of the lines seen).
//!
//! Only files of plain IPv4 and IPv6 addresses and prefixes, of the families the set
//! holds and no more distinct ones than its size, are read here. Anything else (a range,
//! a name, a bad line, a family the set does not hold, too many elements) gives `None`,
//! and `pfc load` compiles the rule file again with its set files read by the compiler,
//! which reports exactly what `pfc check` reports (file:line:col) or accepts what this
//! reader does not know.

use pfc_compiler::program::dynamic::{prefix_key, Family};
use pfc_compiler::program::{DynamicKind, DynamicSet};
use pfc_compiler::syntax::{plain_prefixes, PlainPrefixes};
use pfc_runtime::attach::sets::SetKey;

/// A piece of a set file read on a thread of its own is at least this long (a thread
/// costs more than reading a short file).
const MIN_PIECE: usize = 1 << 20;
/// The most threads one file is read on.
const MAX_THREADS: usize = 8;

/// The elements of a set file of plain addresses and prefixes, each family sorted,
/// without repeats; `None` at a line that is anything else.
pub fn read(text: &str) -> Option<PlainPrefixes> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from).min(MAX_THREADS);
    let pieces = pieces(text, cores.min(text.len() / MIN_PIECE).max(1));
    let (first, rest) = pieces.split_first()?;
    let read: Vec<Option<PlainPrefixes>> = std::thread::scope(|scope| {
        // A thread the OS refuses (pids.max, ulimit -u) leaves its piece to this one.
        let threads: Vec<_> = rest
            .iter()
            .map(|piece| (piece, std::thread::Builder::new().spawn_scoped(scope, move || sorted(piece)).ok()))
            .collect();
        let mut read = vec![sorted(first)];
        read.extend(threads.into_iter().map(|(piece, thread)| match thread {
            Some(thread) => thread.join().ok().flatten(),
            None => sorted(piece),
        }));
        read
    });
    merged(read)
}

/// The pieces' elements in one, each family sorted, without repeats; `None` if a piece
/// is `None`.
fn merged(pieces: impl IntoIterator<Item = Option<PlainPrefixes>>) -> Option<PlainPrefixes> {
    let mut all = PlainPrefixes::default();
    for piece in pieces {
        let piece = piece?;
        all.ipv4.extend(piece.ipv4);
        all.ipv6.extend(piece.ipv6);
    }
    // Sorted runs, one a piece: the stable sort merges them.
    all.ipv4.sort();
    all.ipv4.dedup();
    all.ipv6.sort();
    all.ipv6.dedup();
    Some(all)
}

/// One piece's elements, each family sorted, without repeats.
fn sorted(piece: &str) -> Option<PlainPrefixes> {
    let mut read = plain_prefixes(piece)?;
    read.ipv4.sort_unstable();
    read.ipv4.dedup();
    read.ipv6.sort_unstable();
    read.ipv6.dedup();
    Some(read)
}

/// `text` cut into at most `count` pieces of about equal length, each ending at a line
/// end (or the text's end).
fn pieces(text: &str, count: usize) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::with_capacity(count);
    let mut start = 0;
    for piece in 1..count {
        let aim = (text.len() * piece / count).max(start);
        let Some(newline) = bytes[aim..].iter().position(|&byte| byte == b'\n') else { break };
        let end = aim + newline + 1;
        pieces.push(&text[start..end]);
        start = end;
    }
    pieces.push(&text[start..]);
    pieces
}

/// The element keys of `set` read from its file (`read`'s elements), in `trie_order`;
/// `None` when they are not all elements of the set: a family it does not hold, more
/// than its size, or a set that is not of prefixes.
pub fn keys(set: &DynamicSet, read: &PlainPrefixes) -> Option<Vec<SetKey>> {
    let holds = |family| set.families.contains(&family);
    let fits = set.kind == DynamicKind::Prefixes
        && (read.ipv4.is_empty() || holds(Family::Ipv4))
        && (read.ipv6.is_empty() || holds(Family::Ipv6))
        && read.ipv4.len() + read.ipv6.len() <= set.max_elements as usize;
    if !fits {
        return None;
    }
    // IPv4's tag sorts before IPv6's; within a family, address then prefix length.
    let ipv4 = read.ipv4.iter().map(|&held| prefix_key(Family::Ipv4, u128::from(held >> 8), held as u8));
    let ipv6 = read.ipv6.iter().map(|&(address, length)| prefix_key(Family::Ipv6, address, length));
    Some(ipv4.chain(ipv6).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pfc_compiler::sources::{parse_with_includes, IncludeLoader, LoadedFile, Parsed};

    /// A set file held in memory, its lines deferred or not.
    struct Memory {
        text: String,
        defer: bool,
    }

    impl IncludeLoader for Memory {
        fn load(&mut self, _including: &LoadedFile, _path: &str) -> Result<LoadedFile, String> {
            Err("no includes".to_string())
        }

        fn load_set_file(&mut self, _including: &LoadedFile, path: &str) -> Result<LoadedFile, String> {
            Ok(LoadedFile { name: path.to_string(), identity: path.to_string(), text: self.text.clone() })
        }

        fn defers_dynamic_set_lines(&self) -> bool {
            self.defer
        }
    }

    fn parsed(declaration: &str, text: &str, defer: bool) -> Parsed {
        let rules = format!("default pass\nset s: {declaration} = file \"list.txt\"\nrule r: drop if ip.src in s\n");
        parse_with_includes(LoadedFile::text(&rules), &mut Memory { text: text.to_string(), defer })
    }

    /// The set's keys as the compiler reads the file (`None`: diagnostics), and as `pfc
    /// load` does (`None`: left to the compiler).
    fn both_ways(declaration: &str, text: &str) -> (Option<Vec<SetKey>>, Option<Vec<SetKey>>) {
        let (program, _) = pfc_compiler::check_parsed(&parsed(declaration, text, false));
        let compiler = program.map(|program| pfc_runtime::attach::sets::in_trie_order(program.dynamic_sets[0].keys()));
        let deferred = parsed(declaration, text, true);
        let files = deferred.deferred_set_files();
        assert_eq!(files.len(), 1);
        let (program, diagnostics) = pfc_compiler::check_parsed(&deferred);
        let program = program.unwrap_or_else(|| panic!("the rule file alone checks: {diagnostics:?}"));
        let set = &program.dynamic_sets[0];
        assert_eq!(set.unread_file, Some(files[0]));
        assert!(set.elements.is_empty());
        let here = read(&deferred.map.files()[files[0]].text).and_then(|lines| keys(set, &lines));
        (compiler, here)
    }

    /// xorshift64*.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Lines of block lists: IPv4 and IPv6 addresses and prefixes (host bits too, /0 to
    /// the whole width), repeats, comments, blanks, CRLF, spaces.
    fn messy_list(lines: usize, seed: u64) -> String {
        let mut state = seed;
        let mut text = String::from("# a list\n\n");
        for _ in 0..lines {
            let bits = next(&mut state);
            let line = match bits % 8 {
                0..=3 => {
                    let address = std::net::Ipv4Addr::from((bits >> 16) as u32 & 0xff0f_ffff);
                    match (bits >> 3) % 4 {
                        0 => address.to_string(),
                        _ => format!("{address}/{}", (bits >> 8) % 33),
                    }
                }
                4..=6 => {
                    let address = std::net::Ipv6Addr::from(u128::from(next(&mut state)) << 64 | 0x20);
                    match (bits >> 3) % 4 {
                        0 => address.to_string(),
                        _ => format!("{address}/{}", (bits >> 8) % 129),
                    }
                }
                _ => format!("  ::ffff:10.0.0.{}  # mapped", (bits >> 8) % 4),
            };
            text.push_str(&line);
            text.push_str(if bits >> 40 & 7 == 0 { "\r\n" } else { "\n" });
        }
        text
    }

    #[test]
    fn a_list_reads_into_the_keys_the_compiler_reads() {
        for (seed, lines) in [(1, 3_000), (2, 40_000), (3, 5)] {
            let text = messy_list(lines, seed);
            let (compiler, here) = both_ways("ip dynamic size 100000", &text);
            assert!(compiler.is_some(), "seed {seed}: the compiler takes the list");
            assert_eq!(here, compiler, "seed {seed}");
            // Cut anywhere into pieces: the same.
            assert_eq!(read(&text), read_pieces(&text, 7), "seed {seed}");
        }
    }

    /// [`read`] of `count` pieces, merged.
    fn read_pieces(text: &str, count: usize) -> Option<PlainPrefixes> {
        merged(pieces(text, count).into_iter().map(sorted))
    }

    #[test]
    fn what_this_reader_does_not_take_is_left_to_the_compiler() {
        let list = "10.0.0.0/8\n2001:db8::/32\n";
        // Taken: the families the set holds, within its size.
        assert!(both_ways("ip dynamic size 2", list).1.is_some());
        // Past the size, a family the set does not hold, a bad line, another element: the
        // compiler reports each, or (a range that is one prefix) takes it.
        let cases = [
            ("ip dynamic size 1", list, false),
            ("ipv4 dynamic", list, false),
            ("ipv6 dynamic", list, false),
            ("ip dynamic", "10.0.0.0/8\n10.0.0.256\n", false),
            ("ip dynamic", "10.0.0.0/8\n10.0.0.0/33\n", false),
            ("ip dynamic", "10.0.0.0/8\nssh\n", false),
            ("ip dynamic", "10.0.0.0/8\n80\n", false),
            ("ip dynamic", "10.0.0.0/8\n10.1.0.0..10.1.255.255\n", true),
        ];
        for (declaration, text, compiler_takes) in cases {
            let (compiler, here) = both_ways(declaration, text);
            assert_eq!(here, None, "{declaration}: {text:?}");
            assert_eq!(compiler.is_some(), compiler_takes, "{declaration}: {text:?}");
        }
    }

    #[test]
    fn pieces_end_at_line_ends_and_cover_the_text() {
        let text = "10.0.0.0/8\n192.0.2.1\n2001:db8::/32\n# c\n\n198.51.100.0/24";
        for count in 1..8 {
            let pieces = pieces(text, count);
            assert!(pieces.len() <= count);
            assert_eq!(pieces.concat(), text);
            assert!(pieces.iter().rev().skip(1).all(|piece| piece.ends_with('\n')), "{pieces:?}");
        }
    }
}
