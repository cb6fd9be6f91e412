//! Rocket.Chat's defaults as data: the permission table and the settings registry, in our own
//! tab-separated form (id, then roles; or id, type, visibility, group, JSON default).

use apogee_types::{Millis, Permission, Role, Setting};
use serde_json::Value;

const PERMISSIONS: &str = include_str!("defaults/permissions.tsv");
const SETTINGS: &str = include_str!("defaults/settings.tsv");

pub(crate) fn permissions(now: Millis) -> Vec<Permission> {
    PERMISSIONS
        .lines()
        .filter_map(|line| {
            let (id, roles) = line.split_once('\t')?;
            let roles = roles.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect();
            Some(Permission { id: id.to_owned(), roles, updated_at: now })
        })
        .collect()
}

/// Settings whose defaults depend on this server, plus the few the registry file cannot express.
pub(crate) fn settings(now: Millis, site_url: &str, unique_id: &str) -> Vec<Setting> {
    let mut out: Vec<Setting> = SETTINGS
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(5, '\t');
            let (id, kind, visibility, group, value) =
                (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            let value: Value = serde_json::from_str(value).ok()?;
            Some(setting(id, kind, visibility == "public", group, value, now))
        })
        .collect();
    out.push(setting("Site_Url", "string", true, "General", site_url.into(), now));
    out.push(setting("uniqueID", "string", true, "General", unique_id.into(), now));
    out.push(setting("Hide_System_Messages", "multiSelect", true, "Message", Value::Array(vec![]), now));
    out
}

fn setting(id: &str, kind: &str, public: bool, group: &str, value: Value, now: Millis) -> Setting {
    Setting {
        id: id.to_owned(),
        package_value: value.clone(),
        value,
        kind: kind.to_owned(),
        public,
        group: group.to_owned(),
        updated_at: now,
    }
}

pub(crate) fn roles(now: Millis) -> Vec<Role> {
    [
        ("admin", "Users", "Admin"),
        ("moderator", "Subscriptions", "Moderator"),
        ("leader", "Subscriptions", "Leader"),
        ("owner", "Subscriptions", "Owner"),
        ("user", "Users", ""),
        ("bot", "Users", ""),
        ("app", "Users", ""),
        ("guest", "Users", ""),
        ("anonymous", "Users", ""),
        ("livechat-agent", "Users", "Livechat Agent"),
        ("livechat-manager", "Users", "Livechat Manager"),
    ]
    .into_iter()
    .map(|(id, scope, description)| Role {
        id: id.into(),
        name: id.into(),
        description: description.into(),
        scope: scope.into(),
        protected: true,
        mandatory_2fa: false,
        updated_at: now,
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_parse_whole() {
        let perms = permissions(Millis(0));
        assert_eq!(perms.len(), PERMISSIONS.lines().count());
        let impersonate = perms.iter().find(|p| p.id == "message-impersonate").map(|p| p.roles.clone());
        assert_eq!(impersonate, Some(vec!["bot".to_owned(), "app".to_owned()]));
        let settings = settings(Millis(0), "http://x", "id");
        assert_eq!(settings.len(), SETTINGS.lines().count() + 3);
        let max = settings.iter().find(|s| s.id == "Message_MaxAllowedSize").map(|s| s.value.clone());
        assert_eq!(max, Some(Value::from(5000)));
    }
}
