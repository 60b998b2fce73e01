//! Which engine serves a request: the base policy's, a profile's, or none (botgate off on the
//! route).

use super::{Engine, Footprint};
use crate::policy::Policy;

/// Which engine serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Index into [`Engines`]: 0 is the base policy, then the profiles in order.
    Engine(usize),
    /// botgate is off on this route.
    Disabled,
}

/// The base policy's engine and one per profile (each keeps its own windows and sessions).
pub struct Engines {
    engines: Vec<(String, Engine)>,
    routes: Vec<(String, crate::policy::RouteChoice)>,
}

impl Engines {
    pub fn new(mut policy: Policy) -> Self {
        let profiles = std::mem::take(&mut policy.profiles);
        let routes = std::mem::take(&mut policy.routes);
        let mut engines = vec![(String::new(), Engine::new(policy))];
        engines.extend(profiles.into_iter().map(|(name, p)| {
            let mut e = Engine::new(p);
            e.set_fleet_scope(&format!("p-{name}"));
            (name, e)
        }));
        Engines { engines, routes }
    }

    /// Whether the route must be read to choose (profiles or per-route settings exist).
    pub fn per_route(&self) -> bool {
        self.engines.len() > 1 || !self.routes.is_empty()
    }

    /// Route metadata (`filter_metadata.botgate.disabled` / `.profile`) first, then the route
    /// name's entry in `routes`, then the base policy. An unknown profile name uses the base.
    pub fn route(&self, route_name: Option<&[u8]>, meta_profile: Option<&[u8]>, meta_disabled: bool) -> Route {
        use crate::policy::RouteChoice;
        if meta_disabled {
            return Route::Disabled;
        }
        let by_name = |name: &[u8]| self.engines.iter().position(|(n, _)| !n.is_empty() && n.as_bytes() == name);
        if let Some(i) = meta_profile.and_then(by_name) {
            return Route::Engine(i);
        }
        let choice = route_name.and_then(|r| self.routes.iter().find(|(n, _)| n.as_bytes() == r).map(|(_, c)| c));
        match choice {
            Some(RouteChoice::Disabled) => Route::Disabled,
            Some(RouteChoice::Profile(p)) => Route::Engine(by_name(p.as_bytes()).unwrap_or(0)),
            None => Route::Engine(0),
        }
    }

    /// The base engine and the profiles' (at least 1).
    pub fn len(&self) -> usize {
        self.engines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.engines.is_empty()
    }

    pub fn get(&mut self, i: usize) -> Option<&mut Engine> {
        self.engines.get_mut(i).map(|(_, e)| e)
    }

    /// Engine `i`, or the base policy's when a reload dropped it (a request that waited across
    /// the reload is still decided, never waved through).
    pub fn get_or_base(&mut self, i: usize) -> Option<&mut Engine> {
        let i = if i < self.engines.len() { i } else { 0 };
        self.get(i)
    }

    pub fn limits_of(&self, i: usize) -> crate::policy::Limits {
        self.engines.get(i).map_or_else(Default::default, |(_, e)| e.policy().limits)
    }

    pub fn profile_name(&self, i: usize) -> &str {
        self.engines.get(i).map_or("", |(n, _)| n.as_str())
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Engine> {
        self.engines.iter_mut().map(|(_, e)| e)
    }

    /// The feeds of every engine, each once (by [`Feed::id`](crate::policy::feeds::Feed::id)).
    pub fn feeds(&self) -> Vec<crate::policy::feeds::Feed> {
        let mut out: Vec<crate::policy::feeds::Feed> = Vec::new();
        for f in self.engines.iter().flat_map(|(_, e)| e.policy().feeds()) {
            if !out.iter().any(|o| o.id() == f.id()) {
                out.push(f.clone());
            }
        }
        out
    }

    /// A feed's new list, for every engine whose lists it feeds.
    pub fn load_feed(&mut self, id: &str, list: &crate::policy::feeds::List) {
        for e in self.iter_mut() {
            e.load_feed(id, list);
        }
    }

    /// Ticks every engine; the footprint is their sum.
    pub fn tick(&mut self, now: u64) -> Footprint {
        self.iter_mut().map(|e| e.tick(now)).fold(Footprint::default(), |a, b| Footprint {
            clients: a.clients + b.clients,
            fingerprints: a.fingerprints + b.fingerprints,
            bodies: a.bodies + b.bodies,
            sessions: a.sessions + b.sessions,
            state_bytes: a.state_bytes + b.state_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_whose_profile_a_reload_dropped_is_decided_by_the_base_policy() {
        let parsed = crate::policy::parse(br#"{"mode": "enforce"}"#);
        let mut engines = Engines::new(parsed.policy.unwrap_or_default());
        assert!(engines.get(3).is_none());
        assert!(engines.get_or_base(3).is_some());
    }
}
