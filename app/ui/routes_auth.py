"""Sign-in and sign-out: GET/POST /ui/login, POST /ui/logout."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.ui.pages import guarded, services_of
from app.ui.render import render
from app.ui.session import (
    COOKIE,
    UiForbidden,
    checked_form,
    new_session,
    read_form,
    safe_next,
    same_origin,
    set_session_cookie,
    ui_secret,
)

router = APIRouter(include_in_schema=False)


@router.get("/ui/login")
async def login_form(request: Request) -> Response:
    if not services_of(request).settings.auth_enabled:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return render(
        request,
        "login.html",
        None,
        title="Sign in",
        next=safe_next(request.query_params.get("next")),
    )


@router.post("/ui/login")
async def login(request: Request) -> Response:
    services = services_of(request)
    try:
        form = await read_form(request)
    except UiForbidden as error:
        return render(
            request,
            "login.html",
            None,
            title="Sign in",
            next="/",
            error=str(error),
            status_code=400,
        )
    next_path = safe_next(form.get("next"))
    if not services.settings.auth_enabled:
        return RedirectResponse(next_path, status_code=303)
    if not same_origin(request):
        return render(
            request,
            "login.html",
            None,
            title="Sign in",
            next=next_path,
            error="Sign in from this collector's own page (Origin check).",
            status_code=403,
        )
    key = form.get("key", "").strip()
    principal = await services.keys.lookup(key) if key else None
    if principal is None or not principal.allows("read"):
        return render(
            request,
            "login.html",
            None,
            title="Sign in",
            next=next_path,
            error="This key is unknown, revoked, or lacks the 'read' scope.",
            status_code=401,
        )
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(request, response, ui_secret(request), new_session(services, key))
    return response


@router.post("/ui/logout")
@guarded
async def logout(request: Request) -> Response:
    await checked_form(request, scope="read")
    target = "/ui/login" if services_of(request).settings.auth_enabled else "/ui/"
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
