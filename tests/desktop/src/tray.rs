//! The tray as a desktop panel sees it: the app's StatusNotifierItem menu on the session bus
//! (`com.canonical.dbusmenu`, exported by libayatana-appindicator). A panel shows the items'
//! labels and sends `Event(id, "clicked", …)` when the user clicks one; so does [`click`].

use std::collections::HashMap;
use zbus::{OwnedVariant, Variant};

const ITEMS: &str = "/org/ayatana/NotificationItem";
const MENU_IFACE: &str = "com.canonical.dbusmenu";

/// Every tray menu on the bus: (bus name, menu object path).
async fn menus(conn: &zbus::Connection) -> Result<Vec<(String, String)>, String> {
    let dbus = zbus::fdo::DBusProxy::new(conn).await.map_err(|e| e.to_string())?;
    let me = conn.unique_name().map(|n| n.to_string());
    let mut out = vec![];
    for name in dbus.list_names().await.map_err(|e| e.to_string())? {
        let name = name.to_string();
        // Unique names only, not this connection's own, and no peer may stall the search.
        if !name.starts_with(':') || Some(&name) == me.as_ref() {
            continue;
        }
        let call = conn.call_method(Some(name.as_str()), ITEMS, Some("org.freedesktop.DBus.Introspectable"), "Introspect", &());
        let Ok(Ok(reply)) = tokio::time::timeout(std::time::Duration::from_secs(2), call).await else { continue };
        let Ok(xml) = reply.body().deserialize::<String>() else { continue };
        for node in xml.split("<node name=\"").skip(1).filter_map(|s| s.split('"').next()) {
            out.push((name.clone(), format!("{ITEMS}/{node}/Menu")));
        }
    }
    Ok(out)
}

/// The labels of the tray menu's items, by id.
async fn labels(conn: &zbus::Connection, name: &str, path: &str) -> Result<Vec<(i32, String)>, String> {
    let ids: Vec<i32> = (0..64).collect();
    let reply = conn.call_method(Some(name), path, Some(MENU_IFACE), "GetGroupProperties", &(ids, vec!["label"])).await.map_err(|e| e.to_string())?;
    let items: Vec<(i32, HashMap<String, OwnedVariant>)> = reply.body().deserialize().map_err(|e| e.to_string())?;
    Ok(items.into_iter().filter_map(|(id, props)| Some((id, String::try_from(props.get("label")?.try_clone().ok()?).ok()?))).collect())
}

/// The labels of the tray menu (the first menu found on the bus at `address`).
pub async fn menu_labels(address: &str) -> Result<Vec<String>, String> {
    let conn = zbus::connection::Builder::address(address).build().await.map_err(|e| e.to_string())?;
    let (name, path) = menus(&conn).await?.into_iter().next().ok_or("no tray menu on the bus")?;
    Ok(labels(&conn, &name, &path).await?.into_iter().map(|(_, l)| l).collect())
}

/// Clicks the tray menu item labelled `label`, as a panel does.
pub async fn click(address: &str, label: &str) -> Result<(), String> {
    let conn = zbus::connection::Builder::address(address).build().await.map_err(|e| e.to_string())?;
    let found = menus(&conn).await?;
    for (name, path) in &found {
        let items = labels(&conn, name, path).await?;
        if let Some((id, _)) = items.iter().find(|(_, l)| l == label) {
            let ts = 0u32;
            conn.call_method(Some(name.as_str()), path.as_str(), Some(MENU_IFACE), "Event", &(*id, "clicked", Variant::I32(0), ts)).await.map_err(|e| e.to_string())?;
            return Ok(());
        }
    }
    Err(format!("no tray item labelled {label:?} in the {} tray menu(s) on the bus", found.len()))
}
