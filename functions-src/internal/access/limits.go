package access

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Limit is one fixed-window counter that a send must fit in. Lambda
// instances share no memory, so counters live in the store and are bumped
// inside the same atomic write as the request they guard.
type Limit struct {
	// Key names the counter and its window, e.g. "email:<hmac>:1764000000".
	// Values are keyed hashes: the store never holds an IP or address here.
	Key   string
	Kind  LimitKind
	Max   int
	Until time.Time // the window's end; the counter may be deleted then
	// Shard is which share of a site-wide budget this counter is (see
	// siteShards); zero for counters that belong to one client.
	Shard int
}

// LimitKind says what a limit protects.
type LimitKind string

const (
	LimitIP            LimitKind = "ip"          // sends from one client network (IPv4 address, IPv6 /64)
	LimitIPv6Site      LimitKind = "ip-site"     // sends from one IPv6 /48, which one customer can rotate /64s in
	LimitIPDaily       LimitKind = "ip-day"      // sends from one client network in a day
	LimitIPv6SiteDaily LimitKind = "ip-site-day" // sends from one IPv6 /48 in a day
	LimitEmail         LimitKind = "email"       // codes sent to one inbox (mail bombing)
	LimitPhone         LimitKind = "phone"       // texts to one number
	LimitSMSDaily      LimitKind = "sms-daily"   // all texts, against SMS pumping
	LimitEmailDaily    LimitKind = "email-daily" // all emails, so bounces cannot get the sender suspended
	LimitVerifyIP      LimitKind = "verify-ip"   // code guesses from one client network
	LimitVerifySite    LimitKind = "verify-site" // code guesses from one IPv6 /48
	LimitOwnerSignIn   LimitKind = "owner-day"   // the owner page's sign-ins asked for with one inbox
	LimitOwnerSignInAt LimitKind = "owner-net"   // those asked for from one client network (an IPv6 /48)
)

// The owner page's sign-in budgets, per typed inbox and UTC day: a budget
// of its own, so that visitors asking for the CV with the owner's address
// cannot lock the owner out; and a share of it per client network, so
// that one network alone cannot either. Every code is 5 guesses at most,
// so the inbox's budget is also the day's guesses at the owner's session
// (50), each code emailed to the owner.
const (
	ownerSignInsPerDay        = 10
	ownerSignInsPerNetworkDay = 3
)

// soft limits drop the SMS and let the email through; hard ones refuse.
func (k LimitKind) soft() bool { return k == LimitPhone || k == LimitSMSDaily }

// siteWide kinds are one budget for every visitor, split into shards.
func (k LimitKind) siteWide() bool { return k == LimitSMSDaily || k == LimitEmailDaily }

// LimitError is returned by a store when a counter is full. Nothing was
// written: the whole atomic step failed.
type LimitError struct{ Limit Limit }

func (e *LimitError) Error() string { return fmt.Sprintf("rate limit %s reached", e.Limit.Kind) }

// ErrRateLimited matches any *LimitError with errors.Is.
var ErrRateLimited = errors.New("rate limited")

func (e *LimitError) Is(target error) bool { return target == ErrRateLimited }

// Limits are the numbers behind the rate limits. Zero disables one.
type Limits struct {
	IPPerHour        int      // sends per client network; an IPv6 /48 gets ipv6SiteFactor times this
	IPPerDay         int      // sends per client network in a day, so one network cannot spend the site's budget
	EmailPerDay      int      // codes per inbox
	PhonePerDay      int      // texts per number
	SMSPerDay        int      // texts for the whole site
	SiteEmailsPerDay int      // emails for the whole site
	VerifyPerHour    int      // code guesses per client network; an IPv6 /48 gets ipv6SiteFactor times this
	SMSRegions       []string // ISO 3166 regions whose numbers may get an SMS, e.g. "GB"; empty allows all
}

// DefaultLimits are generous for people and tight for scripts: a visitor
// needs one request and perhaps a resend or two, and a guess or two.
func DefaultLimits() Limits {
	return Limits{IPPerHour: 10, IPPerDay: 20, EmailPerDay: 5, PhonePerDay: 3, SMSPerDay: 50, SiteEmailsPerDay: 200, VerifyPerHour: 30}
}

// ipv6SiteFactor: an IPv6 /48 is one customer's site, 65,536 /64s that
// one machine can rotate through. It gets three times one network's
// limit: room for a few people there, no escape for a script.
const ipv6SiteFactor = 3

// siteShards is how many counters a site-wide budget is split into. Every
// visitor's transaction writes one of them: were it one item, concurrent
// transactions on it would fail with TransactionConflict in exactly the
// spike a widely shared link brings. Each shard holds its share of the
// budget, so the shares add up to the budget exactly.
const siteShards = 8

// shardTries is how many shares of a site-wide budget one send may try
// before it is refused: a full share is not a spent budget, and two more
// draws bring the refusals close to the budget's real end.
const shardTries = 3

// unknownNetwork is the one name every caller shares whose address is
// missing or unreadable: such requests are counted, never waved through.
const unknownNetwork = "unknown"

// limiter makes the counters for one send.
type limiter struct {
	// keys are HMAC keys, newest first: counters hold no raw IP, address
	// or number. While the secret is being rotated, every counter is
	// bumped under each key, so the new key's counters are complete by
	// the time the old one is dropped and no window starts again at zero.
	keys   [][]byte
	limits Limits
	shard  func(n int) int // a random shard in [0, n)
}

func (l limiter) hash(key []byte, kind LimitKind, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(string(kind) + "\x00" + strings.ToLower(value)))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

func window(now time.Time, size time.Duration) (start, end time.Time) {
	start = now.UTC().Truncate(size)
	return start, start.Add(size)
}

// counters appends the counters for one value of one kind: one per key.
func (l limiter) counters(out []Limit, now time.Time, kind LimitKind, value string, max int, size time.Duration) []Limit {
	if max <= 0 {
		return out
	}
	start, end := window(now, size)
	for _, k := range l.keys {
		out = append(out, Limit{Key: fmt.Sprintf("%s:%s:%d", kind, l.hash(k, kind, value), start.Unix()),
			Kind: kind, Max: max, Until: end})
	}
	return out
}

// site is one share of a site-wide budget.
func (l limiter) site(now time.Time, kind LimitKind, max, shard int) Limit {
	start, end := window(now, 24*time.Hour)
	n := min(siteShards, max)
	share := max / n
	if shard < max%n {
		share++
	}
	return Limit{Key: fmt.Sprintf("%s:%d:%d", kind, shard, start.Unix()), Kind: kind, Max: share, Until: end, Shard: shard}
}

func (l limiter) siteMax(kind LimitKind) int {
	if kind == LimitSMSDaily {
		return l.limits.SMSPerDay
	}
	return l.limits.SiteEmailsPerDay
}

func (l limiter) addSite(out []Limit, now time.Time, kind LimitKind) []Limit {
	max := l.siteMax(kind)
	if max <= 0 {
		return out
	}
	return append(out, l.site(now, kind, max, l.shard(min(siteShards, max))))
}

// reshard swaps the full share named by full for another share of the
// same budget that this send has not tried yet. It reports false when
// every share has been tried.
func (l limiter) reshard(now time.Time, ls []Limit, full Limit, tried map[LimitKind][]int) bool {
	n := min(siteShards, l.siteMax(full.Kind))
	tried[full.Kind] = append(tried[full.Kind], full.Shard)
	if len(tried[full.Kind]) >= min(n, shardTries) {
		return false
	}
	next := l.shard(n)
	for slices.Contains(tried[full.Kind], next) {
		next = (next + 1) % n
	}
	for i := range ls {
		if ls[i].Key == full.Key {
			ls[i] = l.site(now, full.Kind, l.siteMax(full.Kind), next)
		}
	}
	return true
}

// network counters for one client in one window: its network and, for
// IPv6, its /48.
func (l limiter) network(out []Limit, now time.Time, ip string, netKind, siteKind LimitKind, max int, size time.Duration) []Limit {
	netName, siteName := networks(ip)
	out = l.counters(out, now, netKind, netName, max, size)
	if siteName != "" {
		out = l.counters(out, now, siteKind, siteName, max*ipv6SiteFactor, size)
	}
	return out
}

// forSend lists the counters one send of a code bumps: the client's
// network (by the hour and by the day), the inbox and the site's email
// budget, and for an SMS the number and the site's SMS budget.
func (l limiter) forSend(now time.Time, ip, email, phone string) []Limit {
	out := l.network(nil, now, ip, LimitIP, LimitIPv6Site, l.limits.IPPerHour, time.Hour)
	out = l.network(out, now, ip, LimitIPDaily, LimitIPv6SiteDaily, l.limits.IPPerDay, 24*time.Hour)
	out = l.counters(out, now, LimitEmail, InboxOf(email), l.limits.EmailPerDay, 24*time.Hour)
	out = l.addSite(out, now, LimitEmailDaily)
	if phone != "" {
		out = l.counters(out, now, LimitPhone, phone, l.limits.PhonePerDay, 24*time.Hour)
		out = l.addSite(out, now, LimitSMSDaily)
	}
	return out
}

// forOwnerSignIn lists the counters one owner sign-in bumps, whatever
// address was typed: the client's network (as a send), the typed inbox's
// sign-in budget and its share for this network, and the site's email
// budget.
func (l limiter) forOwnerSignIn(now time.Time, ip, email string) []Limit {
	out := l.network(nil, now, ip, LimitIP, LimitIPv6Site, l.limits.IPPerHour, time.Hour)
	out = l.network(out, now, ip, LimitIPDaily, LimitIPv6SiteDaily, l.limits.IPPerDay, 24*time.Hour)
	out = l.counters(out, now, LimitOwnerSignIn, InboxOf(email), ownerSignInsPerDay, 24*time.Hour)
	// An IPv6 client counts by its /48, which it cannot rotate out of.
	network, site := networks(ip)
	if site != "" {
		network = site
	}
	out = l.counters(out, now, LimitOwnerSignInAt, InboxOf(email)+"\x00"+network, ownerSignInsPerNetworkDay, 24*time.Hour)
	return l.addSite(out, now, LimitEmailDaily)
}

// forVerify lists the counters one guess bumps: the client's network.
func (l limiter) forVerify(now time.Time, ip string) []Limit {
	return l.network(nil, now, ip, LimitVerifyIP, LimitVerifySite, l.limits.VerifyPerHour, time.Hour)
}

// InboxOf names the inbox an address delivers to: what the limits count
// as one, and what an erasure removes every spelling of. Case is ignored,
// a "+tag" is dropped, a domain counts in its ASCII (Punycode) form, and
// at Gmail (gmail.com and googlemail.com are one) dots in the local part
// are ignored.
func InboxOf(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return strings.ToLower(email)
	}
	local, domain := strings.ToLower(email[:at]), strings.ToLower(email[at+1:])
	// Stored before domains were kept in Punycode, or typed by the owner
	// in Unicode: the same domain either way.
	if ascii, ok := asciiDomain(domain); ok {
		domain = ascii
	}
	domain = strings.TrimSuffix(domain, ".")
	if i := strings.IndexByte(local, '+'); i > 0 {
		local = local[:i]
	}
	if domain == "gmail.com" || domain == "googlemail.com" {
		local, domain = strings.ReplaceAll(local, ".", ""), "gmail.com"
	}
	return local + "@" + domain
}

// networks names the client for the per-network limits: an IPv4 address,
// or an IPv6 /64 (what one household or server is handed) and the /48 it
// sits in. A missing or unreadable address counts under one shared name
// rather than escaping the limit.
func networks(ip string) (network, site string) {
	addr, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		return unknownNetwork, ""
	}
	addr = addr.Unmap()
	if addr.Is4() {
		return addr.String(), ""
	}
	p64, err64 := addr.Prefix(64)
	p48, err48 := addr.Prefix(48)
	if err64 != nil || err48 != nil {
		return unknownNetwork, ""
	}
	return p64.String(), p48.String()
}

// smsAllowed reports whether texts may go to this E.164 number's region.
// Regions, not calling codes: +1 alone spans the US, Canada and some
// twenty Caribbean countries whose ranges are favourites of SMS pumping.
func (l limiter) smsAllowed(phones Phones, phone string) bool {
	if len(l.limits.SMSRegions) == 0 {
		return true
	}
	return phones != nil && slices.Contains(l.limits.SMSRegions, phones.Region(phone))
}

// withoutSoft drops the SMS counters, for a send that goes by email only.
func withoutSoft(ls []Limit) []Limit {
	var out []Limit
	for _, l := range ls {
		if !l.Kind.soft() {
			out = append(out, l)
		}
	}
	return out
}

func rateLimited(l Limit, now time.Time, cause error) *Error {
	wait := max(l.Until.Sub(now), time.Second)
	msg := "Too many requests from your network. Please try again later."
	code := "rate_limited_ip"
	switch l.Kind {
	case LimitEmail, LimitOwnerSignIn, LimitOwnerSignInAt:
		msg = "Too many codes were sent to this email address today. Please try again tomorrow."
		code = "rate_limited_email"
	case LimitEmailDaily:
		msg = "This site has sent all the codes it can today. Please try again tomorrow."
		code = "rate_limited_site"
	}
	return &Error{Kind: KindRateLimited, Code: code, Message: msg, RetryAfter: wait, cause: cause}
}
