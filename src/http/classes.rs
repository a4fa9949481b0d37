//! Classes, their members and students, and what the caller may do in each.
//!
//! Every class-scoped handler in the crate goes through [`require`]: it asks the one
//! permission function, and answers 404 to anyone outside the class, exactly as for a class
//! that does not exist, so a family cannot learn that another class is there.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::accounts::parse_name;
use super::extract::{ApiJson, CurrentUser};
use super::{Error, Result};
use crate::access::{
    decide, decide_member_change, Action, Facts, Grant, MemberChange, Role, Target, Who,
};
use crate::sfu::revocation::Revocation;
use crate::state::AppState;
use crate::store::classes::{Class, Member, MyClass, Student};
use crate::store::users::User;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/classes", get(list_classes).post(create_class))
        .route(
            "/api/v1/classes/{class_id}",
            get(get_class).patch(rename_class),
        )
        .route("/api/v1/classes/{class_id}/members", get(list_members))
        .route(
            "/api/v1/classes/{class_id}/members/{user_id}",
            put(set_member).delete(remove_member),
        )
        .route(
            "/api/v1/classes/{class_id}/students",
            get(list_students).post(create_student),
        )
        .route(
            "/api/v1/classes/{class_id}/students/{student_id}",
            patch(rename_student).delete(remove_student),
        )
}

/// Refuses changes that would bring an archived class back to life (new rooms, invites):
/// `409 class_archived`. Its history stays readable.
pub async fn require_active(state: &AppState, class_id: i64) -> Result<()> {
    let class = state.store.class(class_id).await?.ok_or(Error::NotFound)?;
    match class.is_archived() {
        false => Ok(()),
        true => Err(Error::conflict(
            "class_archived",
            "this class is archived; an admin or its teacher can bring it back",
        )),
    }
}

/// How the user stands in the class. Unknown classes and outsiders look the same.
pub async fn who_in(state: &AppState, user: &User, class_id: i64) -> Result<Who> {
    if user.is_admin() {
        state.store.class(class_id).await?.ok_or(Error::NotFound)?;
        return Ok(Who::Admin);
    }
    Ok(match state.store.role_in(user.id, class_id).await? {
        Some(role) => Who::Member(role),
        None => Who::Outsider,
    })
}

/// Asks the permission function (with no situational facts: those belong to live rooms);
/// outsiders get 404, members who may not get 403.
pub async fn require(
    state: &AppState,
    user: &User,
    class_id: i64,
    action: Action,
) -> Result<(Who, Grant)> {
    let who = who_in(state, user, class_id).await?;
    let grant = decide(who, action, Facts::default());
    match (grant, who) {
        (Grant::Denied, Who::Outsider) => Err(Error::NotFound),
        (Grant::Denied, _) => Err(Error::forbidden(
            "not_allowed",
            "your role in this class does not allow this",
        )),
        _ => Ok((who, grant)),
    }
}

/// The account a change is aimed at, with all its memberships; 404 for an unknown account.
pub async fn target(state: &AppState, user_id: i64) -> Result<Target> {
    let user = state
        .store
        .user_by_id(user_id)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(Target {
        is_admin: user.is_admin(),
        memberships: state.store.memberships_of(user_id).await?,
    })
}

/// Asks the permission function whether `who` may make `change` to the membership of
/// `user_id` in the class: 403 `not_allowed` when not, 404 when there is nothing to remove.
async fn require_member_change(
    state: &AppState,
    who: Who,
    class_id: i64,
    user_id: i64,
    change: MemberChange,
) -> Result<()> {
    let target = target(state, user_id).await?;
    if change == MemberChange::Remove && target.role_in(class_id).is_none() {
        return Err(Error::NotFound);
    }
    match decide_member_change(who, class_id, &target, change).allowed() {
        true => Ok(()),
        false => Err(Error::forbidden(
            "not_allowed",
            "teachers change and remove only the families, tutors and students of their class \
             (new people join through an invite); admins do the rest",
        )),
    }
}

#[derive(Serialize, ToSchema)]
pub struct ClassView {
    #[serde(flatten)]
    pub class: Class,
    /// The caller's role; absent for an admin who is not a member.
    pub role: Option<Role>,
    /// What the caller may do here, straight from the permission function (without the
    /// situational facts: promotion, room assignment, admission).
    pub permissions: BTreeMap<String, Grant>,
}

#[derive(Deserialize, ToSchema)]
pub struct CreateClassRequest {
    pub name: String,
    /// Admins may name the class's teacher; otherwise the creator teaches it.
    pub teacher_id: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
pub struct RenameClassRequest {
    /// A new name.
    pub name: Option<String>,
    /// `true` archives the class (history kept; it leaves families' lists and cannot go
    /// live), `false` brings it back.
    pub archived: Option<bool>,
}

/// A member, and for families the students they belong to.
#[derive(Serialize, ToSchema)]
pub struct MemberView {
    #[serde(flatten)]
    pub member: Member,
    /// For families: their children in this class.
    pub students: Vec<StudentRef>,
}

#[derive(Serialize, ToSchema)]
pub struct StudentRef {
    pub id: i64,
    pub name: String,
}

#[derive(Deserialize, ToSchema)]
pub struct SetMemberRequest {
    pub role: Role,
}

#[derive(Deserialize, ToSchema)]
pub struct CreateStudentRequest {
    pub name: String,
}

/// The caller's classes (every class for an admin).
#[utoipa::path(get, path = "/api/v1/classes", tag = "classes", responses((status = 200, body = [MyClass])))]
pub async fn list_classes(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<MyClass>>> {
    Ok(Json(
        state
            .store
            .classes_of(current.user.id, current.user.is_admin())
            .await?,
    ))
}

/// Opens a class. Admins and teachers may; the teacher (or the named one) teaches it.
#[utoipa::path(post, path = "/api/v1/classes", tag = "classes", request_body = CreateClassRequest,
    responses((status = 201, body = Class), (status = 403, body = super::error::ErrorBody)))]
pub async fn create_class(
    State(state): State<AppState>,
    current: CurrentUser,
    ApiJson(request): ApiJson<CreateClassRequest>,
) -> Result<(StatusCode, Json<Class>)> {
    let user = &current.user;
    let who = if user.is_admin() {
        Who::Admin
    } else if state.store.teaches_any(user.id).await? {
        Who::Member(Role::Teacher)
    } else {
        Who::Outsider
    };
    if !decide(who, Action::ManageClass, Facts::default()).allowed() {
        return Err(Error::forbidden(
            "not_allowed",
            "only admins and teachers open classes",
        ));
    }
    let name = parse_name(&request.name)?;
    let teacher = match request.teacher_id {
        Some(id) if who == Who::Admin => {
            state
                .store
                .user_by_id(id)
                .await?
                .ok_or_else(|| Error::bad_request("unknown_user", "no user has that id"))?
                .id
        }
        Some(_) => {
            return Err(Error::forbidden(
                "not_allowed",
                "only admins name another teacher",
            ))
        }
        None => user.id,
    };
    // An admin opening a class for nobody in particular does not teach it.
    let teacher = (!(who == Who::Admin && request.teacher_id.is_none())).then_some(teacher);
    let class = state.store.create_class(name.as_str(), teacher).await?;
    Ok((StatusCode::CREATED, Json(class)))
}

/// One class, with the caller's role and permissions. Any member may look.
#[utoipa::path(get, path = "/api/v1/classes/{class_id}", tag = "classes", params(("class_id" = i64, Path)),
    responses((status = 200, body = ClassView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_class(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
) -> Result<Json<ClassView>> {
    let who = who_in(&state, &current.user, class_id).await?;
    let permissions: BTreeMap<String, Grant> = Action::ALL
        .iter()
        .map(|a| (action_name(*a), decide(who, *a, Facts::default())))
        .collect();
    if permissions.values().all(|g| !g.allowed()) {
        return Err(Error::NotFound);
    }
    let class = state.store.class(class_id).await?.ok_or(Error::NotFound)?;
    let role = match who {
        Who::Member(role) => Some(role),
        _ => None,
    };
    Ok(Json(ClassView {
        class,
        role,
        permissions,
    }))
}

fn action_name(action: Action) -> String {
    serde_json::to_value(action)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Renames the class, archives it or brings it back.
#[utoipa::path(patch, path = "/api/v1/classes/{class_id}", tag = "classes", params(("class_id" = i64, Path)),
    request_body = RenameClassRequest, responses((status = 204), (status = 400, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn rename_class(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
    ApiJson(request): ApiJson<RenameClassRequest>,
) -> Result<StatusCode> {
    require(&state, &current.user, class_id, Action::ManageClass).await?;
    let name = request.name.as_deref().map(parse_name).transpose()?;
    if let Some(name) = name {
        state.store.rename_class(class_id, name.as_str()).await?;
    }
    if let Some(archived) = request.archived {
        state.store.set_archived(class_id, archived).await?;
        tracing::info!(
            class_id,
            archived,
            by = current.user.id,
            "class archive state"
        );
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Everyone in the class with their role; families with the students they belong to.
#[utoipa::path(get, path = "/api/v1/classes/{class_id}/members", tag = "classes", params(("class_id" = i64, Path)),
    responses((status = 200, body = [MemberView]), (status = 404, body = super::error::ErrorBody)))]
pub async fn list_members(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
) -> Result<Json<Vec<MemberView>>> {
    require(&state, &current.user, class_id, Action::ManageClass).await?;
    let mut links: BTreeMap<i64, Vec<StudentRef>> = BTreeMap::new();
    for link in state.store.family_links(class_id).await? {
        links.entry(link.user_id).or_default().push(StudentRef {
            id: link.student_id,
            name: link.name,
        });
    }
    let members = state.store.members(class_id).await?;
    Ok(Json(
        members
            .into_iter()
            .map(|member| MemberView {
                students: match member.role.as_str() {
                    "family" => links.remove(&member.user_id).unwrap_or_default(),
                    _ => Vec::new(),
                },
                member,
            })
            .collect(),
    ))
}

/// Sets a member's role. Only admins add people who are not members yet (everyone else
/// comes in through an invite), so a teacher cannot pull strangers into a class; teachers
/// change only families, tutors and students, and make nobody a teacher.
#[utoipa::path(put, path = "/api/v1/classes/{class_id}/members/{user_id}", tag = "classes",
    params(("class_id" = i64, Path), ("user_id" = i64, Path)), request_body = SetMemberRequest,
    responses((status = 204), (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn set_member(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((class_id, user_id)): Path<(i64, i64)>,
    ApiJson(request): ApiJson<SetMemberRequest>,
) -> Result<StatusCode> {
    let (who, _) = require(&state, &current.user, class_id, Action::ManageClass).await?;
    let change = MemberChange::SetRole(request.role);
    require_member_change(&state, who, class_id, user_id, change).await?;
    state
        .store
        .set_membership(user_id, class_id, request.role)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes someone from the class (teachers: only families, tutors and students).
#[utoipa::path(delete, path = "/api/v1/classes/{class_id}/members/{user_id}", tag = "classes",
    params(("class_id" = i64, Path), ("user_id" = i64, Path)),
    responses((status = 204), (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((class_id, user_id)): Path<(i64, i64)>,
) -> Result<StatusCode> {
    let (who, _) = require(&state, &current.user, class_id, Action::ManageClass).await?;
    require_member_change(&state, who, class_id, user_id, MemberChange::Remove).await?;
    match state.store.remove_membership(user_id, class_id).await? {
        true => {
            // Out of the class means out of its live rooms, now.
            state
                .sfu
                .revoke(Revocation::membership(user_id, class_id))
                .await;
            Ok(StatusCode::NO_CONTENT)
        }
        false => Err(Error::NotFound),
    }
}

/// The class's students; a family sees only its own children.
#[utoipa::path(get, path = "/api/v1/classes/{class_id}/students", tag = "classes", params(("class_id" = i64, Path)),
    responses((status = 200, body = [Student]), (status = 404, body = super::error::ErrorBody)))]
pub async fn list_students(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
) -> Result<Json<Vec<Student>>> {
    let who = who_in(&state, &current.user, class_id).await?;
    if decide(who, Action::ManageClass, Facts::default()).allowed() {
        return Ok(Json(state.store.students(class_id).await?));
    }
    require(&state, &current.user, class_id, Action::ReadTimeline).await?;
    Ok(Json(
        state.store.children_of(current.user.id, class_id).await?,
    ))
}

/// Adds a student (a child, who may never have a login).
#[utoipa::path(post, path = "/api/v1/classes/{class_id}/students", tag = "classes", params(("class_id" = i64, Path)),
    request_body = CreateStudentRequest, responses((status = 201, body = Student), (status = 404, body = super::error::ErrorBody)))]
pub async fn create_student(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
    ApiJson(request): ApiJson<CreateStudentRequest>,
) -> Result<(StatusCode, Json<Student>)> {
    require(&state, &current.user, class_id, Action::ManageClass).await?;
    let name = parse_name(&request.name)?;
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_student(class_id, name.as_str()).await?),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct RenameStudentRequest {
    pub name: String,
}

/// Renames a student.
#[utoipa::path(patch, path = "/api/v1/classes/{class_id}/students/{student_id}", tag = "classes",
    params(("class_id" = i64, Path), ("student_id" = i64, Path)), request_body = RenameStudentRequest,
    responses((status = 204), (status = 400, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn rename_student(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((class_id, student_id)): Path<(i64, i64)>,
    ApiJson(request): ApiJson<RenameStudentRequest>,
) -> Result<StatusCode> {
    require(&state, &current.user, class_id, Action::ManageClass).await?;
    let name = parse_name(&request.name)?;
    match state
        .store
        .rename_student(class_id, student_id, name.as_str())
        .await?
    {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(Error::NotFound),
    }
}

/// Removes a student from the class, with the invites made for them; families stay members.
#[utoipa::path(delete, path = "/api/v1/classes/{class_id}/students/{student_id}", tag = "classes",
    params(("class_id" = i64, Path), ("student_id" = i64, Path)),
    responses((status = 204), (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn remove_student(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((class_id, student_id)): Path<(i64, i64)>,
) -> Result<StatusCode> {
    require(&state, &current.user, class_id, Action::ManageClass).await?;
    match state.store.remove_student(class_id, student_id).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(Error::NotFound),
    }
}
