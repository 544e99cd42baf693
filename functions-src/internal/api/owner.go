package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/ownercsv"
)

// OwnerService is what the owner function needs from the domain.
type OwnerService interface {
	SignIn(ctx context.Context, email, clientIP string) (access.Issued, error)
	Verify(ctx context.Context, in access.VerifyInput) (access.Session, error)
	List(ctx context.Context, tokens []string) (access.Listing, error)
	Erase(ctx context.Context, tokens []string, email string) (int, error)
	SignOut(ctx context.Context, tokens []string) error
}

var _ OwnerService = (*access.Owner)(nil)

// SessionCookie names the owner's session cookie. It is sent to the
// owner function's own path only (SessionCookiePath), never with a page
// or a visitor's call.
const (
	SessionCookie     = "cv_owner"
	SessionCookiePath = "/api/owner"
)

// ownerBody is the owner function's JSON: an action and the fields it
// takes (ownerFields).
type ownerBody struct {
	Action    string `json:"action"`
	Email     string `json:"email"`
	RequestID string `json:"requestId"`
	OTP       string `json:"otp"`
}

// ownerFields lists the fields each action takes besides "action".
var ownerFields = map[string][]string{
	"sign-in":  {"email"},
	"verify":   {"requestId", "otp"},
	"list":     nil,
	"csv":      nil,
	"erase":    {"email"},
	"sign-out": nil,
}

type ownerRecordsResponse struct {
	Requests []ownercsv.Record `json:"requests"`
	// Total is how many are held; more than len(Requests) when the list
	// stops at access.MaxListed.
	Total            int `json:"total"`
	SessionExpiresIn int `json:"sessionExpiresIn"`
}

type messageResponse struct {
	Message string `json:"message"`
}

type signedInResponse struct {
	Message   string `json:"message"`
	ExpiresIn int    `json:"expiresIn"`
}

type erasedResponse struct {
	Erased  int    `json:"erased"`
	Message string `json:"message"`
}

// Owner serves POST owner: the owner page's sign-in, list, CSV, erasure
// and sign-out, one action per call. list, csv and erase need the session
// cookie verify sets; without a valid one the answer is 401
// session_required and nothing is read. sign-out always answers 200 and
// clears the cookie: with no session there is nothing more to end.
func Owner(svc OwnerService, cfg Config) *Function {
	return newFunction("owner", cfg, func(ctx context.Context, call input) (any, error) {
		var in ownerBody
		if err := decode(call.body, &in); err != nil {
			return nil, err
		}
		fields, known := ownerFields[in.Action]
		if !known {
			return nil, &access.Error{Kind: access.KindInvalid, Code: "invalid_input", Message: "Some fields need attention.",
				Fields: map[string]string{"action": "Use one of sign-in, verify, list, csv, erase or sign-out."}}
		}
		// decode has checked the body is one object of known, distinct
		// keys: what is left is whether this action takes each.
		var present map[string]json.RawMessage
		if err := json.Unmarshal(call.body, &present); err != nil {
			return nil, badJSON("The request body is not valid JSON.")
		}
		for name := range present {
			if name != "action" && !slices.Contains(fields, name) {
				return nil, badJSON(fmt.Sprintf("The action %q takes no field %q.", in.Action, name))
			}
		}
		tokens := call.cookies(SessionCookie)
		switch in.Action {
		case "sign-in":
			out, err := svc.SignIn(ctx, in.Email, call.clientIP)
			if err != nil {
				return nil, err
			}
			return issuedResponse{Message: "If that is the owner's address, a code is on its way.",
				RequestID: out.RequestID, ExpiresIn: seconds(out.ExpiresIn)}, nil
		case "verify":
			s, err := svc.Verify(ctx, access.VerifyInput{RequestID: in.RequestID, OTP: in.OTP, ClientIP: call.clientIP})
			if err != nil {
				return nil, err
			}
			return reply{json: signedInResponse{Message: "Signed in.", ExpiresIn: seconds(s.ExpiresIn)},
				setCookie: []string{sessionCookie(s.Token, s.ExpiresIn, true, cfg.SecureCookies)}}, nil
		case "list":
			l, err := svc.List(ctx, tokens)
			if err != nil {
				return nil, err
			}
			recs := make([]ownercsv.Record, 0, len(l.Requests))
			for _, r := range l.Requests {
				recs = append(recs, ownercsv.ToRecord(r))
			}
			return ownerRecordsResponse{Requests: recs, Total: l.Total, SessionExpiresIn: seconds(l.SessionExpiresIn)}, nil
		case "csv":
			l, err := svc.List(ctx, tokens)
			if err != nil {
				return nil, err
			}
			// Oldest first, as `cv-owner list -format csv` writes it.
			reqs := slices.Clone(l.Requests)
			slices.Reverse(reqs)
			var buf bytes.Buffer
			if err := ownercsv.Write(&buf, reqs); err != nil {
				return nil, err
			}
			return reply{file: buf.Bytes(), fileType: "text/csv; charset=utf-8", fileName: "cv-access-requests.csv"}, nil
		case "erase":
			n, err := svc.Erase(ctx, tokens, in.Email)
			if err != nil {
				return nil, err
			}
			return erasedResponse{Erased: n, Message: fmt.Sprintf("Erased %d request(s) made with that inbox, in any spelling.", n)}, nil
		default: // sign-out
			if err := svc.SignOut(ctx, tokens); err != nil {
				return nil, err
			}
			return reply{json: messageResponse{Message: "Signed out."},
				setCookie: []string{sessionCookie("", 0, false, cfg.SecureCookies)}}, nil
		}
	})
}

// OwnerOff serves POST owner where the owner page is not set up (no
// CV_OWNER_EMAIL): every call that passes the edge's rules gets 404
// owner_page_off, in words, rather than a function that will not start.
func OwnerOff(cfg Config) *Function {
	return newFunction("owner", cfg, func(context.Context, input) (any, error) { return nil, access.ErrOwnerPageOff })
}

// sessionCookie is the Set-Cookie value that sets the session (keep) or
// clears it: HttpOnly, so no script reads it; SameSite=Strict, so no other
// site's page sends it; the owner function's path only; Secure on https.
func sessionCookie(token string, ttl time.Duration, keep, secure bool) string {
	maxAge := 0
	if keep {
		maxAge = int(ttl / time.Second)
	}
	c := SessionCookie + "=" + token + "; Path=" + SessionCookiePath + "; Max-Age=" + strconv.Itoa(maxAge) + "; HttpOnly; SameSite=Strict"
	if secure {
		c += "; Secure"
	}
	return c
}
