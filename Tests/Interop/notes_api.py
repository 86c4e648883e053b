"""A second protected API, written as a FastAPI developer would: OAuth2 scopes per operation with `Security`, tokens
verified with PyJWT against the issuer's JWKS. It trusts the tokens the MCP gateway mints (`NOTES_ISSUER`, its JWKS,
audience `NOTES_AUDIENCE`). FastAPI writes its OpenAPI 3.1 document at /openapi.json, which the gateway makes tools
of (test_gateway_openapi_fastapi.py). `/_seen` lists the claims of every token it accepted, for the test."""

import os
import uuid

import jwt
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Security
from fastapi.security import OAuth2AuthorizationCodeBearer, SecurityScopes
from pydantic import BaseModel, Field

ISSUER = os.environ["NOTES_ISSUER"]
AUDIENCE = os.environ["NOTES_AUDIENCE"]
jwks = jwt.PyJWKClient(ISSUER + "/.well-known/jwks.json", cache_keys=True)

oauth2 = OAuth2AuthorizationCodeBearer(
    authorizationUrl=ISSUER + "/authorize", tokenUrl=ISSUER + "/token",
    scopes={"notes:read": "Read your notes", "notes:write": "Write and delete your notes"})

app = FastAPI(title="Notes API", version="1.0.0")
notes: dict[str, dict] = {}
seen: list[dict] = []


def caller(security_scopes: SecurityScopes, token: str = Depends(oauth2)) -> str:
    challenge = f'Bearer scope="{security_scopes.scope_str}"' if security_scopes.scopes else "Bearer"
    try:
        key = jwks.get_signing_key_from_jwt(token)
        claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER)
    except jwt.PyJWTError as error:
        raise HTTPException(401, detail=f"Invalid token: {error}", headers={"WWW-Authenticate": challenge})
    granted = set(claims.get("scope", "").split())
    for scope in security_scopes.scopes:
        if scope not in granted:
            raise HTTPException(403, detail=f"Not enough permissions: {scope} is needed",
                                headers={"WWW-Authenticate": challenge})
    seen.append(claims)
    return claims["sub"]


class NewNote(BaseModel):
    text: str = Field(min_length=1, max_length=200, description="What to remember")
    tags: list[str] = Field(default_factory=list, max_length=5)


class Note(NewNote):
    id: str
    owner: str


@app.get("/notes", operation_id="list-notes", summary="List your notes", response_model=list[Note])
def list_notes(tag: str | None = Query(None, description="Only the notes with this tag"),
               owner: str = Security(caller, scopes=["notes:read"])):
    return [note for note in notes.values() if note["owner"] == owner and (tag is None or tag in note["tags"])]


@app.post("/notes", operation_id="add-note", summary="Add a note", status_code=201, response_model=Note)
def add_note(note: NewNote, owner: str = Security(caller, scopes=["notes:write"])):
    created = {"id": str(uuid.uuid4()), "owner": owner, **note.model_dump()}
    notes[created["id"]] = created
    return created


@app.get("/notes/{note_id}", operation_id="get-note", summary="One of your notes", response_model=Note)
def get_note(note_id: str = Path(description="The note's id"), owner: str = Security(caller, scopes=["notes:read"])):
    note = notes.get(note_id)
    if note is None or note["owner"] != owner:
        raise HTTPException(404, detail="No such note")
    return note


@app.delete("/notes/{note_id}", operation_id="delete-note", summary="Delete a note", status_code=204)
def delete_note(note_id: str, owner: str = Security(caller, scopes=["notes:write"])):
    note = notes.get(note_id)
    if note is None or note["owner"] != owner:
        raise HTTPException(404, detail="No such note")
    del notes[note_id]


@app.get("/_seen", include_in_schema=True, operation_id="seen")
def tokens_seen():
    return seen


@app.post("/_grow", include_in_schema=False)
def grow():
    """Adds an operation, as a new release of the API would: the next /openapi.json has it."""
    def archive_note(note_id: str, owner: str = Security(caller, scopes=["notes:write"])):
        note = notes.get(note_id)
        if note is None or note["owner"] != owner:
            raise HTTPException(404, detail="No such note")
        note["tags"] = [*note["tags"], "archived"]
        return note

    app.add_api_route("/notes/{note_id}/archive", archive_note, methods=["POST"], operation_id="archive-note",
                      summary="Archive a note", response_model=Note)
    app.openapi_schema = None
    return {"status": "grown"}


@app.get("/health", include_in_schema=False)
def health():
    return {"status": "ok"}
