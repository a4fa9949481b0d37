//! Who may enter a room and as what: the permission function applied to the room's kind.

use super::error::SignalError;
use super::Identity;
use crate::access::{decide, Action, Facts, Who};
use crate::domain::RoomKind;
use crate::sfu::room::Standing;
use crate::store::rooms::Room;
use crate::store::Store;

/// The standing of someone entering `room`, or why they may not.
pub async fn admit(
    store: &Store,
    identity: &Identity,
    room: &Room,
) -> Result<Standing, SignalError> {
    let kind = RoomKind::parse(&room.kind).ok_or(SignalError::Internal)?;
    if let Identity::User(user) = identity {
        // A room token or stream key outlives the sessions that deactivation ended.
        if !user.is_active() {
            return Err(SignalError::NotAllowed(
                "this account was deactivated".into(),
            ));
        }
    }
    let (who, user_id) = match identity {
        Identity::User(user) if user.is_admin() => (Who::Admin, Some(user.id)),
        Identity::User(user) => {
            let role = store
                .role_in(user.id, room.class_id)
                .await
                .map_err(|_| SignalError::Internal)?;
            (
                role.map(Who::Member).unwrap_or(Who::Outsider),
                Some(user.id),
            )
        }
        Identity::Guest(_) => (Who::Guest, None),
    };
    // Outside the class, the room does not exist. A guest's token names one open house;
    // every other room of its class is out of bounds too.
    let outside = match identity {
        Identity::Guest(claims) => claims.class_id != room.class_id,
        Identity::User(_) => who == Who::Outsider,
    };
    if let Identity::Guest(claims) = identity {
        if !outside && claims.room_id != room.id {
            return Err(SignalError::NotAllowed(
                "your guest link is for another room".into(),
            ));
        }
    }
    if outside {
        return Err(SignalError::RoomNotFound);
    }
    // An archived class keeps its history but no room of it goes live again.
    let class = store
        .class(room.class_id)
        .await
        .map_err(|_| SignalError::Internal)?
        .ok_or(SignalError::RoomNotFound)?;
    if class.is_archived() {
        return Err(SignalError::bad(
            "class_archived",
            "this class is archived; its rooms are closed",
        ));
    }
    let assigned_host = user_id.is_some() && user_id == room.host_user_id;
    let mut standing = Standing {
        who,
        kind,
        assigned_host,
        promoted: false,
        waiting: false,
    };
    let plain = Facts {
        assigned_host,
        ..Facts::default()
    };
    let allowed = match kind {
        RoomKind::Classroom => {
            decide(who, Action::WatchClassroom, plain).allowed() || standing.host()
        }
        RoomKind::OpenHouse => {
            decide(who, Action::WatchOpenHouse, plain).allowed() || standing.host()
        }
        RoomKind::Tutoring => {
            if standing.host() || decide(who, Action::JoinTutoring, plain).allowed() {
                true
            } else if decide(
                who,
                Action::JoinTutoring,
                Facts {
                    admitted: true,
                    ..plain
                },
            )
            .allowed()
                && on_list(store, room, user_id).await?
            {
                // Families and students wait until the host lets them in.
                standing.waiting = true;
                true
            } else {
                false
            }
        }
    };
    if !allowed {
        return Err(SignalError::NotAllowed(format!(
            "your role does not let you into a {} room",
            kind.as_str()
        )));
    }
    Ok(standing)
}

/// Whether the tutoring room's list of students lets this person ask to come in.
async fn on_list(store: &Store, room: &Room, user_id: Option<i64>) -> Result<bool, SignalError> {
    match user_id {
        Some(id) => store
            .on_room_list(room.id, id)
            .await
            .map_err(|_| SignalError::Internal),
        None => Ok(false),
    }
}

/// The name shown to others, and the role label.
pub fn presentation(identity: &Identity, standing: &Standing) -> (String, String) {
    let role = match standing.who {
        Who::Admin => "admin".to_owned(),
        Who::Member(role) => role.as_str().to_owned(),
        Who::Guest => "guest".to_owned(),
        Who::Outsider => "outsider".to_owned(),
    };
    let name = match identity {
        Identity::User(user) => user.display_name.clone(),
        Identity::Guest(claims) => claims.display_name.clone(),
    };
    (name, role)
}
