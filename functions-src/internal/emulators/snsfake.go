package emulators

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// SNSFake speaks the SNS query protocol for the one call cv-access makes,
// Publish to a phone number. No installable emulator handles SMS, so this
// small fake stands in: it checks the request the way SNS would (signed,
// the right action and version, an E.164 number, a message) and records it.
type SNSFake struct {
	AccessKeyID string // requests must be signed with this key id

	mu       sync.Mutex
	messages []SentSMS
	failNext string // an error code to answer the next Publish with
}

// SentSMS is one accepted Publish.
type SentSMS struct {
	MessageID   string            `json:"messageId"`
	PhoneNumber string            `json:"phoneNumber"`
	Message     string            `json:"message"`
	Attributes  map[string]string `json:"attributes"`
	At          time.Time         `json:"at"`
}

// Messages returns what was published, oldest first.
func (f *SNSFake) Messages() []SentSMS {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]SentSMS(nil), f.messages...)
}

// FailNext makes the next Publish fail with an SNS error code, such as
// "Throttling" or "InvalidParameter".
func (f *SNSFake) FailNext(code string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext = code
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

func (f *SNSFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/_messages" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(f.Messages())
		return
	}
	if r.Method != http.MethodPost {
		snsError(w, http.StatusMethodNotAllowed, "Sender", "InvalidAction", "only POST is supported")
		return
	}
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+f.AccessKeyID+"/") || !strings.Contains(auth, "/sns/aws4_request") {
		snsError(w, http.StatusForbidden, "Sender", "InvalidClientTokenId", "The security token included in the request is invalid.")
		return
	}
	if err := r.ParseForm(); err != nil {
		snsError(w, http.StatusBadRequest, "Sender", "MalformedQueryString", "cannot parse the form body")
		return
	}
	if r.PostForm.Get("Action") != "Publish" || r.PostForm.Get("Version") != "2010-03-31" {
		snsError(w, http.StatusBadRequest, "Sender", "InvalidAction", "this fake supports Action=Publish, Version=2010-03-31 only")
		return
	}
	phone, msg := r.PostForm.Get("PhoneNumber"), r.PostForm.Get("Message")
	switch {
	case !e164.MatchString(phone):
		snsError(w, http.StatusBadRequest, "Sender", "InvalidParameter", "Invalid parameter: PhoneNumber Reason: not E.164")
		return
	case msg == "":
		snsError(w, http.StatusBadRequest, "Sender", "InvalidParameter", "Invalid parameter: Empty message")
		return
	case len(msg) > 1600:
		snsError(w, http.StatusBadRequest, "Sender", "InvalidParameter", "Invalid parameter: Message too long")
		return
	}
	attrs := map[string]string{}
	for i := 1; ; i++ {
		name := r.PostForm.Get(fmt.Sprintf("MessageAttributes.entry.%d.Name", i))
		if name == "" {
			break
		}
		attrs[name] = r.PostForm.Get(fmt.Sprintf("MessageAttributes.entry.%d.Value.StringValue", i))
	}

	f.mu.Lock()
	fail := f.failNext
	f.failNext = ""
	id := uuid.NewString()
	if fail == "" {
		f.messages = append(f.messages, SentSMS{MessageID: id, PhoneNumber: phone, Message: msg, Attributes: attrs, At: time.Now().UTC()})
	}
	f.mu.Unlock()
	if fail != "" {
		snsError(w, http.StatusBadRequest, "Sender", fail, "injected failure")
		return
	}

	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <PublishResult><MessageId>%s</MessageId></PublishResult>
  <ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>
</PublishResponse>`, id, uuid.NewString())
}

func snsError(w http.ResponseWriter, status int, typ, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	var esc strings.Builder
	_ = xml.EscapeText(&esc, []byte(msg))
	fmt.Fprintf(w, `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error>
  <RequestId>%s</RequestId>
</ErrorResponse>`, typ, code, esc.String(), uuid.NewString())
}
