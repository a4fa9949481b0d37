//! How posts are shown: who may see a post (one post at a time, or a whole page decided in
//! SQL through `PostReader`), the view of a page of posts built from one batch of lookups, and
//! the safe HTML rendered when a post is written.

use serde::Serialize;
use utoipa::ToSchema;

use super::classes::who_in;
use super::{Error, Result};
use crate::access::{decide, Action, Facts, Who};
use crate::markdown::{attachment_refs, to_safe_html};
use crate::state::AppState;
use crate::store::attachments::Attachment;
use crate::store::post_pages::PostReader;
use crate::store::posts::{Comment, Post};
use crate::store::users::User;

#[derive(Serialize, ToSchema)]
pub struct StudentRef {
    pub id: i64,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct PostView {
    #[serde(flatten)]
    pub post: Post,
    pub students: Vec<StudentRef>,
    pub targets: Vec<String>,
    /// Download each at /api/v1/attachments/{id}.
    pub attachments: Vec<Attachment>,
    /// The first comments, oldest first; all of them with GET /api/v1/posts/{post_id}/comments.
    pub comments: Vec<Comment>,
    pub comment_count: i64,
    /// Families of the class who have seen the post; teachers only (the list: GET
    /// /api/v1/posts/{post_id}/seen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_views: Option<i64>,
}

pub(super) fn manages(who: Who) -> bool {
    decide(who, Action::ManageClass, Facts::default()).allowed()
}

/// Whether the caller wrote the post and may still write posts in its class (their role is
/// asked, not just their name on the post).
pub(super) fn writes(who: Who, user: &User, post: &Post) -> bool {
    post.author_id == Some(user.id) && decide(who, Action::PublishPost, Facts::default()).allowed()
}

/// The reader of a class's published posts, as the role table makes them: the same rule as
/// [`visible`], for a whole page at once.
pub(super) fn reader(who: Who, user: &User) -> PostReader {
    PostReader {
        user_id: user.id,
        sees_all: manages(who),
        sees_own: decide(who, Action::PublishPost, Facts::default()).allowed(),
    }
}

/// The caller's standing in the post's class, if the post is theirs to see.
pub async fn visible(state: &AppState, user: &User, post: &Post) -> Result<Who> {
    // Membership decides first: an outsider (someone removed, too) is denied every action.
    let who = who_in(state, user, post.class_id).await?;
    let sees = if manages(who) || writes(who, user, post) {
        true
    } else if post.state != "published"
        || !decide(who, Action::ReadTimeline, Facts::default()).allowed()
    {
        false
    } else {
        post.visibility == "class" || state.store.featured_for(post.id, user.id).await?
    };
    if sees {
        Ok(who)
    } else {
        Err(Error::NotFound)
    }
}

/// The views of posts of one class the caller may see, in the order given: one batch of
/// lookups for the whole page. Nothing here records that the caller saw them (see `seen`).
pub(super) async fn views(
    state: &AppState,
    who: Who,
    class_id: i64,
    posts: Vec<Post>,
) -> Result<Vec<PostView>> {
    if posts.is_empty() {
        return Ok(Vec::new());
    }
    let teaches = manages(who);
    let mut posts = posts;
    // A post stored without its HTML (written behind the server's back since start-up
    // rendered the rest) is rendered once, here, and kept.
    for post in posts.iter_mut().filter(|p| p.html.is_empty()) {
        post.html = render(&state.store, class_id, &post.body).await?;
        state.store.set_post_html(post.id, &post.html).await?;
    }
    let ids: Vec<i64> = posts.iter().map(|p| p.id).collect();
    let mut details = state.store.post_details(class_id, &ids, teaches).await?;
    Ok(posts
        .into_iter()
        .map(|post| {
            let id = post.id;
            PostView {
                students: details
                    .students
                    .remove(&id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(id, name)| StudentRef { id, name })
                    .collect(),
                targets: details.targets.remove(&id).unwrap_or_default(),
                attachments: details.attachments.remove(&id).unwrap_or_default(),
                comments: details.comments.remove(&id).unwrap_or_default(),
                comment_count: details.comment_counts.get(&id).copied().unwrap_or(0),
                family_views: teaches.then(|| details.family_views.get(&id).copied().unwrap_or(0)),
                post,
            }
        })
        .collect())
}

/// The view of one post.
pub(super) async fn view(state: &AppState, who: Who, post: Post) -> Result<PostView> {
    let class_id = post.class_id;
    views(state, who, class_id, vec![post])
        .await?
        .pop()
        .ok_or(Error::NotFound)
}

/// A post body as safe HTML, rendered once when the post is written: images may show only
/// the class's own attachments (see `markdown`).
pub async fn render(store: &crate::store::Store, class_id: i64, body: &str) -> Result<String> {
    let own_images = store
        .class_attachment_ids(class_id, &attachment_refs(body))
        .await?
        .into_iter()
        .collect();
    Ok(to_safe_html(body, &own_images))
}

/// At start-up: renders the posts written before HTML was stored with them.
pub async fn render_missing_html(store: &crate::store::Store) -> Result<u64> {
    let mut done = 0;
    loop {
        let batch = store.posts_without_html(200).await?;
        if batch.is_empty() {
            return Ok(done);
        }
        for (id, class_id, body) in batch {
            store
                .set_post_html(id, &render(store, class_id, &body).await?)
                .await?;
            done += 1;
        }
    }
}
