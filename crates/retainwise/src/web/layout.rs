//! The page shell: head, skip link, navigation, main landmark. Every page goes through
//! [`page`], so the stylesheet, the script and the landmarks are the same everywhere.

use maud::{html, Markup, DOCTYPE};

use super::assets;

/// Which navigation entry is the current page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// The upload page.
    Upload,
    /// The predictions list and everything under a prediction.
    Predictions,
    /// The webhooks and their deliveries.
    Webhooks,
    /// The re-scoring schedules.
    Schedules,
    /// The organisation's members.
    Members,
    /// The audit log.
    Audit,
    /// Neither (sign-in, errors).
    None,
}

/// A whole HTML page titled `title` with `body` in the main landmark. `sign_out` adds the
/// sign-out button (when sign-in is configured).
pub fn page(title: &str, nav: Nav, sign_out: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · retainwise" }
                link rel="stylesheet" href=(assets::css_url());
                script src=(assets::js_url()) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "retainwise" }
                    nav aria-label="Main" {
                        ul {
                            li { a href="/" aria-current=[current(nav, Nav::Upload)] { "Upload" } }
                            li { a href="/predictions" aria-current=[current(nav, Nav::Predictions)] { "Predictions" } }
                            li { a href="/webhooks" aria-current=[current(nav, Nav::Webhooks)] { "Webhooks" } }
                            li { a href="/schedules" aria-current=[current(nav, Nav::Schedules)] { "Schedules" } }
                            li { a href="/members" aria-current=[current(nav, Nav::Members)] { "Members" } }
                            li { a href="/audit" aria-current=[current(nav, Nav::Audit)] { "Audit" } }
                        }
                    }
                    @if sign_out {
                        form.signout method="post" action="/signout" {
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main #main tabindex="-1" {
                    (body)
                }
            }
        }
    }
}

fn current(nav: Nav, entry: Nav) -> Option<&'static str> {
    (nav == entry).then_some("page")
}
