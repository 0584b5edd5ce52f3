package grant

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/tokend/tokend"
)

// The revocation feed tells resource servers that verify tokens offline
// what a token cannot tell them itself: that it, its session, its user or
// its client was revoked, disabled or deleted since it was signed. It is
// built from the store's change log (the one Sync follows), so its cursors
// are change seqs and every node serves the same feed. Each node keeps the
// entries still in force in memory, resolved once per change (a reader
// costs no store read), from the moment it loaded the full set; a cursor
// from before that moment (another node's, or this node's before a
// restart) gets the full set again, flagged Reset.
//
// Entries only ever add refusals, and a subscriber merges them by keeping
// the latest time of each field: entries can arrive twice, from two nodes,
// or in another batching, and the result is the same. A re-enabled user
// needs no entry that lifts a refusal, since refusals name tokens by when
// they were issued.

// Kinds of feed entry.
const (
	FeedToken   = "token"   // an access token revoked; ID is its jti
	FeedSession = "session" // a session revoked; ID is the sid its access tokens carry
	FeedUser    = "user"    // ID is the user id
	FeedClient  = "client"  // ID is the client id
)

// FeedEntry is one revocation in force.
type FeedEntry struct {
	// Seq is the change that produced the entry (the load's seq for an
	// entry of the full set).
	Seq  int64
	Kind string
	ID   string
	// Username is set on users of no client app: Atoti tokens name their
	// user by username in sub.
	Username string
	// TokensBefore (users and clients): every token of the subject issued
	// before this time (its iat earlier) is refused. A disabled or deleted
	// subject gets the time the feed saw it so, plus feedSkew; a user whose
	// older tokens were ended gets that time.
	TokensBefore time.Time
	// Until is when the entry may be forgotten: no token it refuses is
	// live after it.
	Until time.Time
}

// FeedPage is one answer of the feed: the entries after the cursor asked
// for (or the full set, when Reset), and the cursor to ask with next.
type FeedPage struct {
	Cursor  int64
	Reset   bool
	Entries []FeedEntry
}

const (
	// MaxFeedWait bounds how long a request waits for news.
	MaxFeedWait = time.Minute
	// maxFeedWaiters bounds the requests waiting at once; past it a
	// request is answered at once (with nothing new), so that open
	// requests cannot pile up without bound.
	maxFeedWaiters = 10_000
	// feedReloadAfter: a feed that has not caught up with the change log
	// for this long loads the full set again, since Watch purges changes
	// older than a day and a gap could have lost some.
	feedReloadAfter = 20 * time.Hour
	// feedPages bounds the pages of changes one sync reads, so that a
	// backlog is worked off over several syncs.
	feedPages = 10
	// feedSkew is added to the time a disabled or deleted subject was seen
	// so: tokens a node with a clock running a little ahead signed just
	// before are still refused. (A subject enabled again within it gets
	// its first tokens refused.)
	feedSkew = 5 * time.Second
	// feedCompactEvery is how often expired entries are dropped.
	feedCompactEvery = time.Minute
)

var errFeedLoading = &tokend.Error{Code: tokend.EUNAVAILABLE, Message: "the revocation feed is loading", RetryAfter: time.Second}

// feedState is the engine's copy of the feed; its zero value is an
// unloaded feed.
type feedState struct {
	syncMu sync.Mutex // one sync at a time

	mu        sync.Mutex
	loaded    bool
	closed    bool
	base      int64       // cursors below base need the full set
	latest    int64       // the last change applied
	entries   []FeedEntry // by Seq
	changed   chan struct{}
	waiters   int
	synced    time.Time // when the feed last caught up with the change log
	compacted time.Time
}

// Revocations answers a subscriber of the revocation feed. With resume
// false (no cursor), or a cursor the feed cannot resume from, it returns
// the full set in force, flagged Reset. Otherwise it returns the entries
// after the cursor, waiting up to wait (at most MaxFeedWait) for one to
// come. It fails with EUNAVAILABLE while the feed has not loaded, and with
// ctx's error when ctx ends first.
func (e *Engine) Revocations(ctx context.Context, after int64, resume bool, wait time.Duration) (*FeedPage, error) {
	f := &e.feed
	f.mu.Lock()
	loaded := f.loaded
	f.mu.Unlock()
	if !loaded {
		// Before the first sync (at start): load it here rather than fail.
		if err := e.syncFeed(ctx); err != nil {
			e.log.Warn("load revocation feed failed", "err", err)
			return nil, errFeedLoading
		}
	}
	var timeout <-chan time.Time
	if wait = min(wait, MaxFeedWait); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	expired := wait <= 0
	for {
		f.mu.Lock()
		now := e.now()
		final := expired || f.closed || f.waiters >= maxFeedWaiters
		switch {
		case !resume || after < f.base || (after > f.latest && final):
			// A cursor past the latest change that stays so is not one of
			// this store's (a restored database, say): start again.
			p := f.full(now)
			f.mu.Unlock()
			return p, nil
		case after <= f.latest:
			if entries := f.since(after, now); len(entries) > 0 || final {
				p := &FeedPage{Cursor: f.latest, Entries: entries}
				f.mu.Unlock()
				return p, nil
			}
		}
		if f.changed == nil {
			f.changed = make(chan struct{})
		}
		ch := f.changed
		f.waiters++
		f.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			expired = true
		case <-ctx.Done():
		}
		f.mu.Lock()
		f.waiters--
		f.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// CloseFeed answers every request waiting on the revocation feed and makes
// later ones answer at once; a server calls it when it shuts down, so that
// long polls do not hold the shutdown up.
func (e *Engine) CloseFeed() {
	f := &e.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.wake()
}

// since returns the entries after seq that are in force at now. f.mu is held.
func (f *feedState) since(seq int64, now time.Time) []FeedEntry {
	i := sort.Search(len(f.entries), func(i int) bool { return f.entries[i].Seq > seq })
	var out []FeedEntry
	for _, en := range f.entries[i:] {
		if en.Until.After(now) {
			out = append(out, en)
		}
	}
	return out
}

// full returns the whole set in force at now, one entry per object. f.mu
// is held.
func (f *feedState) full(now time.Time) *FeedPage {
	p := &FeedPage{Cursor: f.latest, Reset: true, Entries: []FeedEntry{}}
	at := map[[2]string]int{}
	for _, en := range f.entries {
		if !en.Until.After(now) {
			continue
		}
		k := [2]string{en.Kind, en.ID}
		if i, ok := at[k]; ok {
			p.Entries[i] = merge(p.Entries[i], en)
			continue
		}
		at[k] = len(p.Entries)
		p.Entries = append(p.Entries, en)
	}
	return p
}

// merge combines two entries about one object as subscribers do: the
// later of each time.
func merge(a, b FeedEntry) FeedEntry {
	if b.Seq > a.Seq {
		a.Seq = b.Seq
	}
	if b.TokensBefore.After(a.TokensBefore) {
		a.TokensBefore = b.TokensBefore
	}
	if b.Until.After(a.Until) {
		a.Until = b.Until
	}
	if b.Username != "" {
		a.Username = b.Username
	}
	return a
}

// wake tells every waiting request that something changed. f.mu is held.
func (f *feedState) wake() {
	if f.changed != nil {
		close(f.changed)
		f.changed = nil
	}
}

// syncFeed brings the feed up to the change log: it resolves the changes
// since the last sync into entries (loading the full set first, or again
// after a long gap). Watch calls it after every Sync.
func (e *Engine) syncFeed(ctx context.Context) error {
	f := &e.feed
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	now := e.now()
	f.mu.Lock()
	loaded, after, synced := f.loaded, f.latest, f.synced
	f.mu.Unlock()
	if !loaded || now.Sub(synced) > feedReloadAfter {
		return e.loadFeed(ctx, now)
	}
	caughtUp := false
	for range feedPages {
		changes, latest, err := e.store.Changes(ctx, after)
		if err != nil {
			return fmt.Errorf("follow revocation feed: %w", err)
		}
		if len(changes) == 0 {
			caughtUp = true
			break
		}
		entries, err := e.resolveChanges(ctx, changes, now)
		if err != nil {
			return fmt.Errorf("follow revocation feed: %w", err)
		}
		f.mu.Lock()
		f.entries = append(f.entries, entries...)
		f.latest = latest
		f.wake()
		f.mu.Unlock()
		after = latest
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if caughtUp {
		f.synced = now
	}
	if now.Sub(f.compacted) >= feedCompactEvery {
		f.compacted = now
		kept := f.entries[:0]
		for _, en := range f.entries {
			if en.Until.After(now) {
				kept = append(kept, en)
			}
		}
		clear(f.entries[len(kept):])
		f.entries = kept
	}
	return nil
}

// loadFeed loads the full set in force: revoked tokens and sessions whose
// tokens may still be live, and the users and clients that the change log
// names and that are now disabled or gone. A disable older than the change
// log (a day) is not found; that matters only when tokens live longer.
func (e *Engine) loadFeed(ctx context.Context, now time.Time) error {
	maxTTL := e.cfg.MaxTokenTTL
	// Walk the change log first, so that whatever happens meanwhile has a
	// later seq and is applied again by the next sync.
	var base int64
	users, clients := map[string]bool{}, map[string]bool{}
	for {
		changes, latest, err := e.store.Changes(ctx, base)
		if err != nil {
			return fmt.Errorf("load revocation feed: %w", err)
		}
		if len(changes) == 0 {
			break
		}
		for _, c := range changes {
			switch c.Kind {
			case tokend.ChangeUser:
				users[c.Ref] = true
			case tokend.ChangeClient:
				clients[c.Ref] = true
			}
		}
		base = latest
	}
	var entries []FeedEntry
	tokens, err := e.store.RevokedTokens(ctx, now, nil)
	if err != nil {
		return fmt.Errorf("load revocation feed: %w", err)
	}
	for _, t := range tokens {
		entries = append(entries, FeedEntry{Seq: base, Kind: FeedToken, ID: t.JTI, Until: t.ExpiresAt})
	}
	sessions, err := e.store.RevokedSessions(ctx, now.Add(-maxTTL), nil)
	if err != nil {
		return fmt.Errorf("load revocation feed: %w", err)
	}
	for _, s := range sessions {
		if en, ok := e.sessionEntry(s, now); ok {
			en.Seq = base
			entries = append(entries, en)
		}
	}
	for id := range users {
		en, ok, err := e.userEntry(ctx, id, now)
		if err != nil {
			return fmt.Errorf("load revocation feed: %w", err)
		}
		if ok {
			en.Seq = base
			entries = append(entries, en)
		}
	}
	for id := range clients {
		en, ok, err := e.clientEntry(ctx, id, now)
		if err != nil {
			return fmt.Errorf("load revocation feed: %w", err)
		}
		if ok {
			en.Seq = base
			entries = append(entries, en)
		}
	}
	f := &e.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries, f.base, f.latest = entries, base, base
	f.loaded, f.synced, f.compacted = true, now, now
	f.wake()
	e.log.Info("revocation feed loaded", "entries", len(entries), "seq", base)
	return nil
}

// resolveChanges turns a batch of changes into feed entries, in seq order,
// reading what each change names as it is now.
func (e *Engine) resolveChanges(ctx context.Context, changes []tokend.Change, now time.Time) ([]FeedEntry, error) {
	seqs := map[[2]string]int64{}
	var jtis, sids, users, clients []string
	for _, c := range changes {
		var list *[]string
		switch c.Kind {
		case tokend.ChangeToken:
			list = &jtis
		case tokend.ChangeSession:
			list = &sids
		case tokend.ChangeUser:
			list = &users
		case tokend.ChangeClient:
			list = &clients
		default:
			continue
		}
		k := [2]string{c.Kind, c.Ref}
		if _, seen := seqs[k]; !seen {
			*list = append(*list, c.Ref)
		}
		seqs[k] = c.Seq
	}
	var out []FeedEntry
	if len(jtis) > 0 {
		tokens, err := e.store.RevokedTokens(ctx, now, jtis)
		if err != nil {
			return nil, err
		}
		for _, t := range tokens {
			out = append(out, FeedEntry{Seq: seqs[[2]string{tokend.ChangeToken, t.JTI}], Kind: FeedToken, ID: t.JTI, Until: t.ExpiresAt})
		}
	}
	if len(sids) > 0 {
		sessions, err := e.store.RevokedSessions(ctx, time.Time{}, sids)
		if err != nil {
			return nil, err
		}
		for _, s := range sessions {
			if en, ok := e.sessionEntry(s, now); ok {
				en.Seq = seqs[[2]string{tokend.ChangeSession, s.ID}]
				out = append(out, en)
			}
		}
	}
	for _, id := range users {
		en, ok, err := e.userEntry(ctx, id, now)
		if err != nil {
			return nil, err
		}
		if ok {
			en.Seq = seqs[[2]string{tokend.ChangeUser, id}]
			out = append(out, en)
		}
	}
	for _, id := range clients {
		en, ok, err := e.clientEntry(ctx, id, now)
		if err != nil {
			return nil, err
		}
		if ok {
			en.Seq = seqs[[2]string{tokend.ChangeClient, id}]
			out = append(out, en)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// sessionEntry is the entry of a revoked session: its access tokens were
// all signed before it was revoked (or expired), and live at most
// MaxTokenTTL. ok is false when none can still be live.
func (e *Engine) sessionEntry(s tokend.RevokedSession, now time.Time) (FeedEntry, bool) {
	last := s.RevokedAt
	if s.ExpiresAt.Before(last) {
		last = s.ExpiresAt
	}
	until := last.Add(e.cfg.MaxTokenTTL)
	return FeedEntry{Kind: FeedSession, ID: s.ID, Until: until}, until.After(now)
}

// userEntry is the entry of a user that changed, read as it is now: ok is
// false when nothing of the user's is refused.
func (e *Engine) userEntry(ctx context.Context, id string, now time.Time) (FeedEntry, bool, error) {
	u, err := e.store.UserByID(ctx, id)
	if err != nil && tokend.ErrorCode(err) != tokend.ENOTFOUND {
		return FeedEntry{}, false, err
	}
	en := FeedEntry{Kind: FeedUser, ID: id}
	switch {
	case u == nil || u.Disabled:
		en.TokensBefore = now.Add(feedSkew)
	case !u.TokensNotBefore.IsZero():
		// A password change: tokens of its second and before are refused
		// (users.go), so the first second they pass is the next one.
		en.TokensBefore = u.TokensNotBefore.Truncate(time.Second).Add(time.Second)
	}
	if u != nil && u.ClientID == "" {
		en.Username = u.Username
	}
	return e.refusal(en, now)
}

// clientEntry is userEntry for a client app.
func (e *Engine) clientEntry(ctx context.Context, id string, now time.Time) (FeedEntry, bool, error) {
	c, err := e.store.ClientByID(ctx, id)
	if err != nil && tokend.ErrorCode(err) != tokend.ENOTFOUND {
		return FeedEntry{}, false, err
	}
	en := FeedEntry{Kind: FeedClient, ID: id}
	if c == nil || c.Disabled {
		en.TokensBefore = now.Add(feedSkew)
	}
	return e.refusal(en, now)
}

// refusal completes a user's or client's entry: whole seconds (iat has no
// finer ones: a token of the second before TokensBefore is refused, one
// of its own second is not), and until when it matters.
func (e *Engine) refusal(en FeedEntry, now time.Time) (FeedEntry, bool, error) {
	if en.TokensBefore.IsZero() {
		return en, false, nil
	}
	if t := en.TokensBefore.Truncate(time.Second); !t.Equal(en.TokensBefore) {
		en.TokensBefore = t.Add(time.Second)
	}
	en.Until = en.TokensBefore.Add(e.cfg.MaxTokenTTL)
	return en, en.Until.After(now), nil
}
