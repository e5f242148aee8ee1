//! IAM permissions boundaries, as part of the AWS-behaviour layer. moto 5 keeps a role's boundary but has no
//! boundary for users: `CreateUser` drops its `PermissionsBoundary`, `GetUser` answers an empty one, and
//! `PutUserPermissionsBoundary` / `DeleteUserPermissionsBoundary` do not exist
//! (moto/iam/models.py: "ToDo: add put_user_permissions_boundary() functionality"). AWS has all three
//! (<https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutUserPermissionsBoundary.html>), so the layer plays
//! users' boundaries and remembers every entity's, which IAM's `iam:PermissionsBoundary` condition key reads for
//! `Put*Policy` and `Attach*Policy` (the boundary the entity has now).

use std::collections::{BTreeMap, HashMap};

/// An IAM entity's boundary, by (`role` | `user`, name). Roles made outside the layer are not known here.
#[derive(Default)]
pub(crate) struct Boundaries {
    by_entity: HashMap<(&'static str, String), String>,
}

fn entity(p: &BTreeMap<String, String>) -> Option<(&'static str, String)> {
    if let Some(r) = p.get("RoleName") {
        return Some(("role", r.clone()));
    }
    p.get("UserName").map(|u| ("user", u.clone()))
}

const EMPTY_RESPONSE: &str = "<ResponseMetadata><RequestId>layer</RequestId></ResponseMetadata>";

impl Boundaries {
    /// The boundary the request's entity has now.
    pub(crate) fn of(&self, p: &BTreeMap<String, String>) -> Option<String> {
        self.by_entity.get(&entity(p)?).cloned()
    }

    /// moto has no user boundary calls: the layer answers them (after authorisation), as AWS does.
    pub(crate) fn answer(&mut self, p: &BTreeMap<String, String>) -> Option<(u16, String)> {
        let action = p.get("Action")?.as_str();
        let user = p.get("UserName")?.clone();
        match action {
            "PutUserPermissionsBoundary" => {
                let arn = p.get("PermissionsBoundary")?.clone();
                self.by_entity.insert(("user", user), arn);
            }
            "DeleteUserPermissionsBoundary" => {
                self.by_entity.remove(&("user", user));
            }
            _ => return None,
        }
        Some((
            200,
            format!("<{action}Response xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">{EMPTY_RESPONSE}</{action}Response>"),
        ))
    }

    /// After moto answered `p` successfully: what the call set, and the user's boundary in `GetUser`'s answer.
    pub(crate) fn after(&mut self, p: &BTreeMap<String, String>, body: Vec<u8>) -> Vec<u8> {
        let (Some(action), Some(e)) = (p.get("Action"), entity(p)) else {
            return body;
        };
        match action.as_str() {
            "CreateRole" | "CreateUser" | "PutRolePermissionsBoundary" => {
                match p.get("PermissionsBoundary") {
                    Some(arn) => self.by_entity.insert(e, arn.clone()),
                    None => self.by_entity.remove(&e),
                };
            }
            "DeleteRolePermissionsBoundary" | "DeleteRole" | "DeleteUser" => {
                self.by_entity.remove(&e);
            }
            "GetUser" => {
                if let Some(arn) = self.by_entity.get(&e) {
                    let xml = String::from_utf8_lossy(&body).replacen(
                        "</User>",
                        &format!("<PermissionsBoundary><PermissionsBoundaryType>PermissionsBoundaryPolicy</PermissionsBoundaryType><PermissionsBoundaryArn>{arn}</PermissionsBoundaryArn></PermissionsBoundary></User>"),
                        1,
                    );
                    return xml.into_bytes();
                }
            }
            _ => {}
        }
        body
    }
}
