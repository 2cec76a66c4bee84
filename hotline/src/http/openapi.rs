//! The OpenAPI 3.1 document, generated from the route table (paths, methods, who may call
//! them) so that it cannot drift from the router.

use serde_json::{Map, Value, json};

use super::access::{Access, RouteSpec};

pub fn document(specs: &[RouteSpec]) -> Value {
    let mut paths = Map::new();
    for spec in specs {
        let entry = paths
            .entry(spec.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        let params: Vec<Value> = spec
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } })
            })
            .collect();
        let (security, roles) = match spec.access {
            Access::Public | Access::Visitor => (json!([]), Value::Null),
            Access::AnyUser => (json!([{ "session": [] }]), json!("any")),
            Access::Roles(r) => (
                json!([{ "session": [] }]),
                json!(r.iter().map(|x| x.as_str()).collect::<Vec<_>>()),
            ),
        };
        let mut responses = Map::new();
        responses.insert("200".into(), json!({ "description": "成功" }));
        if !spec.access.is_public() {
            responses.insert(
                "401".into(),
                json!({ "$ref": "#/components/responses/Unauthorized" }),
            );
            responses.insert(
                "403".into(),
                json!({ "$ref": "#/components/responses/Forbidden" }),
            );
        }
        let mut op = json!({
            "summary": spec.summary,
            "tags": [spec.tag],
            "operationId": operation_id(spec),
            "security": security,
            "responses": responses,
        });
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if !roles.is_null() {
            op["x-roles"] = roles;
        }
        entry[spec.method.as_str().to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "hotline API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "天津市小客车增量指标竞价服务热线 — contact-centre API. Errors share one shape: {\"error\": {\"code\", \"message\"}}. State-changing requests need the X-CSRF-Token header returned at login.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": { "type": "apiKey", "in": "cookie", "name": super::access::SESSION_COOKIE }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": { "error": { "type": "object", "properties": {
                        "code": { "type": "string" }, "message": { "type": "string" } } } }
                }
            },
            "responses": {
                "Unauthorized": { "description": "未登录", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                "Forbidden": { "description": "无权限", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
            }
        }
    })
}

fn operation_id(spec: &RouteSpec) -> String {
    let mut id = spec.method.as_str().to_ascii_lowercase();
    for seg in spec
        .path
        .split('/')
        .filter(|s| !s.is_empty() && *s != "api" && *s != "v1")
    {
        id.push('_');
        id.push_str(&seg.replace(['{', '}'], "").replace(['-', '.'], "_"));
    }
    id
}
