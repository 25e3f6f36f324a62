package rcm

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/x12"
)

// An 835 paying CLM01 ACCT-1001: 155.50 charged, 100 paid, 25 copay and
// 30.50 contractual adjustment.
const era = "ISA*00*          *00*          *ZZ*XYZ01          *ZZ*WARD           *261210*1200*^*00501*000000009*0*P*:~" +
	"GS*HP*XYZ01*WARD*20261210*1200*9*X*005010X221A1~ST*835*0001*005010X221A1~" +
	"BPR*I*100*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765*20261210~TRN*1*EFT12345*1512345678~" +
	"N1*PR*XYZ Insurance~N1*PE*Springfield Clinic*XX*1234567893~LX*1~" +
	"CLP*ACCT-1001*1*155.5*100*25*12*PAYER-77~CAS*CO*45*30.5~NM1*QC*1*Doe*Jane****MI*W123456789~" +
	"SVC*HC:99213*120.5*80~CAS*PR*3*25~CAS*CO*45*15.5~SVC*HC:87880*35*20~CAS*CO*45*15~" +
	"SE*15*0001~GE*1*9~IEA*1*000000009~"

func TestRead835(t *testing.T) {
	ix, err := x12.Parse([]byte(era))
	if err != nil {
		t.Fatal(err)
	}
	remits, err := Read835(ix.Sets()[0].Segments)
	if err != nil {
		t.Fatal(err)
	}
	if len(remits) != 1 {
		t.Fatalf("%d remits", len(remits))
	}
	r := remits[0]
	if r.ControlNo != "ACCT-1001" || r.Paid != "100" || r.CheckNo != "EFT12345" || r.PaymentDate != "20261210" || len(r.Lines) != 2 ||
		len(r.Lines[0].Adjustments) != 2 || r.Lines[0].Adjustments[0] != (Adjustment{Group: "PR", Reason: "3", Amount: "25"}) {
		t.Fatalf("remit = %+v", r)
	}
	cr := RemitClaimResponse(r, "Claim/c1", time.Now())
	b, _ := json.Marshal(cr)
	for _, want := range []string{`"outcome":"complete"`, `"request":{"reference":"Claim/c1"}`, `"date":"2026-12-10"`,
		`"category":{"coding":[{"code":"copay","system":"http://terminology.hl7.org/CodeSystem/adjudication"}]}`, `"value":"PAYER-77"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("ClaimResponse lacks %s:\n%s", want, b)
		}
	}
}
