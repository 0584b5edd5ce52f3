package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
)

// The revocation feed: GET /oauth2/revocations[?after=CURSOR][&wait=30s].
//
// The caller authenticates as a confidential client with HTTP Basic, as for
// introspection (resource servers are clients). Without after, or with a
// cursor the node cannot resume from, the answer is the full set in force
// with "reset": true; with after, the entries since, waiting up to wait
// (at most a minute) for one to come. Every answer carries the cursor to
// ask with next:
//
//	{"cursor": "1234", "reset": false, "entries": [
//	  {"kind": "token", "id": "<jti>", "until": 1767225600},
//	  {"kind": "session", "id": "<sid>", "until": 1767225600},
//	  {"kind": "user", "id": "<user id>", "username": "alice", "tokens_before": 1767139200, "until": 1767225600},
//	  {"kind": "client", "id": "<client id>", "tokens_before": 1767139200, "until": 1767225600}]}
//
// A token is refused when its jti is a token entry, its sid a session
// entry, or when it names a user (sub, or user_id, taiki_user_id; the
// username for a token with Atoti's authorities claim) or a client
// (client_id, client_app_id) with an entry whose tokens_before is later
// than its iat. Times are seconds since the epoch; an entry may be
// forgotten after its until.

// feedEntry is an entry on the wire.
type feedEntry struct {
	Kind         string `json:"kind"`
	ID           string `json:"id"`
	Username     string `json:"username,omitempty"`
	TokensBefore int64  `json:"tokens_before,omitempty"`
	Until        int64  `json:"until"`
}

type feedAnswer struct {
	Cursor  string      `json:"cursor"`
	Reset   bool        `json:"reset"`
	Entries []feedEntry `json:"entries"`
}

// registerRevocations mounts the feed.
func (s *Server) registerRevocations(mux Mux) {
	mux.HandleFunc("GET /oauth2/revocations", s.handleRevocations)
	mux.HandleFunc("/oauth2/revocations", methodNotAllowed("GET"))
}

func (s *Server) handleRevocations(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, sec, ok, err := basicAuth(r)
	if err == nil && !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="tokend", charset="UTF-8"`)
		err = &tokend.Error{Code: tokend.EINVALIDCLIENT, Message: "client authentication required (HTTP Basic)"}
	}
	if err == nil {
		_, err = s.Engine.AuthenticateClient(ctx, id, sec, false)
	}
	if err != nil {
		s.oauthError(w, r, err)
		return
	}
	after, resume, wait, err := feedQuery(r)
	if err != nil {
		s.oauthError(w, r, err)
		return
	}
	if wait > 0 {
		// A long poll outlasts the server's write timeout: extend it for
		// this request.
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + 10*time.Second))
	}
	page, err := s.Engine.Revocations(ctx, after, resume, wait)
	if err != nil {
		if ctx.Err() != nil {
			return // the subscriber left
		}
		s.oauthError(w, r, err)
		return
	}
	out := feedAnswer{Cursor: strconv.FormatInt(page.Cursor, 10), Reset: page.Reset, Entries: make([]feedEntry, len(page.Entries))}
	for i, en := range page.Entries {
		out.Entries[i] = feedEntry{Kind: en.Kind, ID: en.ID, Username: en.Username, Until: en.Until.Unix()}
		if !en.TokensBefore.IsZero() {
			out.Entries[i].TokensBefore = en.TokensBefore.Unix()
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

// feedQuery reads after (a cursor this endpoint returned) and wait (a
// duration such as 30s, or seconds) from the query string.
func feedQuery(r *http.Request) (after int64, resume bool, wait time.Duration, err error) {
	q := r.URL.Query()
	for name, v := range q {
		switch {
		case name != "after" && name != "wait":
			return 0, false, 0, tokend.Errorf(tokend.EINVALID, "unknown parameter %s (want after and wait)", safeName(name))
		case len(v) > 1:
			return 0, false, 0, tokend.Errorf(tokend.EINVALID, "parameter %s given more than once", name)
		}
	}
	if v, ok := q["after"]; ok {
		after, err = strconv.ParseInt(v[0], 10, 64)
		if err != nil || after < 0 {
			return 0, false, 0, &tokend.Error{Code: tokend.EINVALID, Message: "after must be a cursor this endpoint returned", Field: "after"}
		}
		resume = true
	}
	if v, ok := q["wait"]; ok {
		wait, err = time.ParseDuration(v[0])
		if n, nerr := strconv.Atoi(v[0]); err != nil && nerr == nil && n >= 0 && n <= int(grant.MaxFeedWait/time.Second) {
			wait, err = time.Duration(n)*time.Second, nil
		}
		if err != nil || wait < 0 || wait > grant.MaxFeedWait {
			return 0, false, 0, &tokend.Error{Code: tokend.EINVALID, Message: "wait must be a duration from 0s to 60s", Field: "wait"}
		}
	}
	return after, resume, wait, nil
}
