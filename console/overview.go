package console

import (
	"net/http"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
)

type overviewView struct {
	Keys  []grant.KeyInfo // those that sign now or soon
	Stats tokend.Stats
	Chart *chart
}

// overview shows the current signing keys, the counts of users, client
// apps and live sessions, and this node's last hour of issuance.
func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *signin) error {
	ctx := r.Context()
	now := c.now()
	ks, err := c.mgr.Keys(ctx)
	if err != nil {
		return err
	}
	d := overviewView{}
	for _, k := range ks {
		if k.Status == grant.KeySigning || k.Status == grant.KeyAnnounced {
			d.Keys = append(d.Keys, k)
		}
	}
	if d.Stats, err = c.store.Stats(ctx, now); err != nil {
		return err
	}
	if c.rates != nil {
		c.rates.sample(now)
		issued, failed := c.rates.hour(now)
		ch := newChart(now, issued, failed)
		d.Chart = &ch
	}
	v := s.view("Overview", "overview")
	v.Flash, v.Data = flashOf(r), d
	c.render(w, http.StatusOK, "overview", v)
	return nil
}
