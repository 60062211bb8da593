//! Route by pattern.

use super::*;

#[test]
fn route_by_pattern() {
    let r = Route::new("{prefix}-{table}").unwrap().var("prefix", "cdc");
    let a = ok(&r, user(1, "m", "n"));
    let b = ok(&r, user(2, "m", "n"));
    assert_eq!(a.target_name(), "cdc-users");
    assert!(
        Arc::ptr_eq(a.target.as_ref().unwrap(), b.target.as_ref().unwrap()),
        "rendered once"
    );
    assert_eq!(
        r.static_target(&users()).unwrap().as_deref(),
        Some("cdc-users")
    );

    let by_field = Route::new("{db}_{table}_{name}").unwrap().lowercase(true);
    assert_eq!(
        ok(&by_field, user(1, "m", "EU")).target_name(),
        "shop_users_eu"
    );
    let mut r = user(1, "m", "n");
    r.values[2] = Value::Null;
    assert_eq!(
        err(&by_field, r),
        r#"route: field "name" in shop.users is NULL; pattern "{db}_{table}_{name}" needs a value"#
    );

    let e = err(&Route::new("{region}").unwrap(), user(1, "m", "n"));
    assert!(
        e.starts_with(r#"route: unknown field "region" in shop.users"#),
        "{e}"
    );
    let keyless = table(None, "logs", &[("a", DataType::Int)], &[]);
    let e = Route::new("{db}-{table}")
        .unwrap()
        .check(&keyless)
        .unwrap_err();
    assert_eq!(
        e,
        r#"route: pattern "{db}-{table}" uses {db} but logs has no namespace"#
    );
    assert_eq!(
        Route::new("{table").unwrap_err().to_string(),
        r#"invalid pattern "{table": unclosed '{'"#
    );
}
