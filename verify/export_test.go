package verify

// FeedSize is how many revocation entries v holds (tests only).
func FeedSize(v *Verifier) int { return v.revoked.size() }
