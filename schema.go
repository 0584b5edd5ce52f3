package tokend

import "fmt"

// SchemaTooNewError is a store's refusal to open a database whose schema a
// newer tokend migrated: this binary's code may not read it correctly, and it
// cannot undo migrations it does not know. Stores return it (wrapped) from
// Open and from their migration commands.
type SchemaTooNewError struct {
	Database int // the database's schema version
	Known    int // the newest schema version this binary knows
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this tokend knows (%d): "+
		"a newer tokend migrated it; run that version or a later one, "+
		"or restore a backup taken before the upgrade", e.Database, e.Known)
}
