//! Global transaction ids: MariaDB's `domain-server-seq` state and MySQL's `uuid:1-n` sets.
//!
//! A stream remembers the GTID state after the last committed transaction, so it can resume
//! on another file layout (after a binlog purge or on a promoted replica). MariaDB's state is
//! one GTID per replication domain (`0-1-48,1-2-7`); MySQL's is a set of intervals per server
//! uuid (`3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7,…`).

use std::collections::BTreeMap;
use std::fmt;

/// A MariaDB GTID: replication domain, server id, sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MariaDbGtid {
    /// The replication domain.
    pub domain: u32,
    /// The server that wrote the transaction.
    pub server: u32,
    /// The sequence number within the domain.
    pub seq: u64,
}

impl MariaDbGtid {
    /// Parses the body of a MariaDB `GTID_EVENT` (type 0xa2): `seq` (u64 LE), `domain` (u32
    /// LE), `flags` (u8). The server id is in the event header. Returns the GTID and whether
    /// the group is standalone (a DDL statement without BEGIN/COMMIT).
    pub fn from_event(data: &[u8], server: u32) -> Option<(MariaDbGtid, bool)> {
        let seq = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
        let domain = u32::from_le_bytes(data.get(8..12)?.try_into().ok()?);
        let flags = *data.get(12)?;
        Some((
            MariaDbGtid {
                domain,
                server,
                seq,
            },
            flags & 1 != 0,
        ))
    }
}

impl fmt::Display for MariaDbGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

impl std::str::FromStr for MariaDbGtid {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid MariaDB GTID {s:?}: expected domain-server-seq");
        let mut it = s.trim().split('-');
        let (Some(d), Some(sv), Some(q), None) = (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(bad());
        };
        Ok(MariaDbGtid {
            domain: d.parse().map_err(|_| bad())?,
            server: sv.parse().map_err(|_| bad())?,
            seq: q.parse().map_err(|_| bad())?,
        })
    }
}

/// MariaDB's replication state: the last GTID of each domain (`@@gtid_slave_pos` format).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MariaDbGtidState {
    domains: BTreeMap<u32, MariaDbGtid>,
}

impl MariaDbGtidState {
    /// Parses `0-1-48,1-2-7` (empty text: no state).
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut state = MariaDbGtidState::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            state.apply(part.parse()?);
        }
        Ok(state)
    }
    /// Records `gtid` as the last of its domain.
    pub fn apply(&mut self, gtid: MariaDbGtid) {
        self.domains.insert(gtid.domain, gtid);
    }
    /// Whether no domain is known.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }
    /// The last GTID of every domain, in domain order.
    pub fn iter(&self) -> impl Iterator<Item = &MariaDbGtid> + '_ {
        self.domains.values()
    }
    /// The last GTID of `domain`.
    pub fn get(&self, domain: u32) -> Option<&MariaDbGtid> {
        self.domains.get(&domain)
    }
}

impl fmt::Display for MariaDbGtidState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.domains.values().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{g}")?;
        }
        Ok(())
    }
}

/// MySQL's GTID set: per server uuid, the executed transaction numbers as intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MySqlGtidSet {
    /// uuid (lower-case, with dashes) -> sorted, disjoint, non-adjacent `[start, end]` ranges.
    sids: BTreeMap<String, Vec<(u64, u64)>>,
}

impl MySqlGtidSet {
    /// Parses `uuid:1-5:7,uuid2:1-3` (whitespace and newlines allowed, as in
    /// `@@gtid_executed`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut set = MySqlGtidSet::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut it = part.split(':');
            let uuid = it.next().unwrap_or_default().trim().to_ascii_lowercase();
            if !valid_uuid(&uuid) {
                return Err(format!(
                    "invalid GTID set {s:?}: {uuid:?} is not a server uuid"
                ));
            }
            let mut any = false;
            for iv in it {
                any = true;
                let bad = || format!("invalid GTID set {s:?}: bad interval {iv:?}");
                let (a, b) = match iv.split_once('-') {
                    Some((a, b)) => (
                        a.trim().parse().map_err(|_| bad())?,
                        b.trim().parse().map_err(|_| bad())?,
                    ),
                    None => {
                        let n: u64 = iv.trim().parse().map_err(|_| bad())?;
                        (n, n)
                    }
                };
                if a == 0 || b < a {
                    return Err(bad());
                }
                set.add_range(&uuid, a, b);
            }
            if !any {
                return Err(format!("invalid GTID set {s:?}: {uuid} has no interval"));
            }
        }
        Ok(set)
    }

    /// Adds transaction `gno` of server `uuid`.
    pub fn add(&mut self, uuid: &str, gno: u64) {
        self.add_range(&uuid.to_ascii_lowercase(), gno, gno);
    }

    fn add_range(&mut self, uuid: &str, a: u64, b: u64) {
        let ranges = self.sids.entry(uuid.to_string()).or_default();
        ranges.push((a, b));
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for &(s, e) in ranges.iter() {
            match merged.last_mut() {
                Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *ranges = merged;
    }

    /// Whether transaction `gno` of `uuid` is in the set.
    pub fn contains(&self, uuid: &str, gno: u64) -> bool {
        self.sids
            .get(&uuid.to_ascii_lowercase())
            .is_some_and(|r| r.iter().any(|&(a, b)| a <= gno && gno <= b))
    }

    /// The ranges of one uuid.
    pub fn ranges(&self, uuid: &str) -> &[(u64, u64)] {
        self.sids
            .get(&uuid.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.sids.is_empty()
    }

    /// Every server uuid with its inclusive `[start, end]` ranges, in uuid order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[(u64, u64)])> + '_ {
        self.sids.iter().map(|(u, r)| (u.as_str(), r.as_slice()))
    }
}

/// The `uuid` and transaction number of a MySQL `GTID_EVENT`.
pub fn mysql_gtid_of(ev: &mysql_common::binlog::events::GtidEvent) -> (String, u64) {
    (uuid_text(&ev.sid()), ev.gno())
}

/// Formats 16 raw uuid bytes (a MySQL GTID event's `sid`) as text.
pub fn uuid_text(sid: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in sid.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn valid_uuid(u: &str) -> bool {
    u.len() == 36
        && u.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

impl fmt::Display for MySqlGtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (uuid, ranges)) in self.sids.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(uuid)?;
            for &(a, b) in ranges {
                if a == b {
                    write!(f, ":{a}")?;
                } else {
                    write!(f, ":{a}-{b}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_event_and_state() {
        let mut data = Vec::new();
        data.extend_from_slice(&48u64.to_le_bytes());
        data.extend_from_slice(&0u32.to_le_bytes());
        data.push(1);
        let (g, standalone) = MariaDbGtid::from_event(&data, 1).unwrap();
        assert_eq!(g.to_string(), "0-1-48");
        assert!(standalone);
        assert!(MariaDbGtid::from_event(&data[..10], 1).is_none());
        let mut st = MariaDbGtidState::parse("1-2-7, 0-1-47").unwrap();
        st.apply(g);
        assert_eq!(st.to_string(), "0-1-48,1-2-7");
        assert!(MariaDbGtidState::parse("0-1").is_err());
        assert!(MariaDbGtidState::parse("").unwrap().is_empty());
    }

    #[test]
    fn mysql_sets_parse_merge_and_format() {
        let u = "3E11FA47-71CA-11E1-9E33-C80AA9429562";
        let mut s = MySqlGtidSet::parse(&format!(
            "{u}:1-5:7,\n 4e11fa47-71ca-11e1-9e33-c80aa9429562:3"
        ))
        .unwrap();
        s.add(u, 6);
        s.add(u, 9);
        assert_eq!(s.ranges(u), &[(1, 7), (9, 9)]);
        assert!(s.contains(u, 4) && !s.contains(u, 8));
        assert_eq!(
            s.to_string(),
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7:9,4e11fa47-71ca-11e1-9e33-c80aa9429562:3"
        );
        assert_eq!(MySqlGtidSet::parse(&s.to_string()).unwrap(), s);
        assert!(MySqlGtidSet::parse("nope:1").is_err());
        assert!(MySqlGtidSet::parse(&format!("{u}:5-2")).is_err());
        assert!(MySqlGtidSet::parse(u).is_err());
        let sid: [u8; 16] = [
            0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42,
            0x95, 0x62,
        ];
        assert_eq!(uuid_text(&sid), u.to_ascii_lowercase());
    }

    #[test]
    fn mysql_gtid_events_extend_the_executed_set() {
        use mysql_common::binlog::events::GtidEvent;
        let sid: [u8; 16] = [
            0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42,
            0x95, 0x62,
        ];
        let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let mut set = MySqlGtidSet::parse(&format!("{u}:1-5")).unwrap();
        for gno in [6, 7, 9] {
            let (uuid, n) = mysql_gtid_of(&GtidEvent::new(sid, gno));
            set.add(&uuid, n);
        }
        assert_eq!(set.to_string(), format!("{u}:1-7:9"));
        let (uuid, n) = mysql_gtid_of(&GtidEvent::new([0xab; 16], 1));
        set.add(&uuid, n);
        assert_eq!(
            set.to_string(),
            format!("{u}:1-7:9,abababab-abab-abab-abab-abababababab:1")
        );
        assert_eq!(
            set.iter()
                .map(|(u, r)| (u.len(), r.len()))
                .collect::<Vec<_>>(),
            vec![(36, 2), (36, 1)]
        );
    }
}
