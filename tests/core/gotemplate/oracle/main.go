// Command oracle renders Go text/template cases with the Sprig text functions.
//
// Input (stdin): a JSON array of {"name", "text", "data", "strict", "iter8"}.
// Output (stdout): a JSON array of {"out"} or {"error", "phase"} in the same order.
// JSON numbers without a fraction or exponent decode as int, others as float64.
// With "iter8", data is decoded as Iter8 0.13's custommetrics task gave it to a template:
// encoding/json into interface{} (every number a float64), then a top-level
// elapsedTimeSeconds, if present, set to an int64 (Iter8 computed it as one).
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"gopkg.in/yaml.v2"
)

type testCase struct {
	Name   string          `json:"name"`
	Text   string          `json:"text"`
	Data   json.RawMessage `json:"data"`
	Strict bool            `json:"strict"`
	Iter8  bool            `json:"iter8"`
}

type result struct {
	Out   *string `json:"out,omitempty"`
	Error *string `json:"error,omitempty"`
	Phase string  `json:"phase,omitempty"`
}

// convert turns json.Number into int or float64, recursively.
func convert(v interface{}) interface{} {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := x.Int64(); err == nil {
				return int(i)
			}
		}
		f, _ := x.Float64()
		return f
	case []interface{}:
		for i := range x {
			x[i] = convert(x[i])
		}
		return x
	case map[string]interface{}:
		for k := range x {
			x[k] = convert(x[k])
		}
		return x
	}
	return v
}

// toYAML marshals like sigs.k8s.io/yaml (JSON, then YAML via yaml.v2) and trims the newline.
func toYAML(v interface{}) string {
	j, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var obj interface{}
	if err := yaml.Unmarshal(j, &obj); err != nil {
		return ""
	}
	out, err := yaml.Marshal(obj)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(out), "\n")
}

func funcs() template.FuncMap {
	f := sprig.TxtFuncMap()
	for _, name := range []string{"env", "expandenv", "getHostByName"} {
		delete(f, name)
	}
	f["toYaml"] = toYAML
	return f
}

func run(c testCase) (res result) {
	defer func() {
		if r := recover(); r != nil {
			msg := fmt.Sprint("panic: ", r)
			res = result{Error: &msg, Phase: "panic"}
		}
	}()
	t := template.New(c.Name).Funcs(funcs())
	if c.Strict {
		t = t.Option("missingkey=error")
	}
	t, err := t.Parse(c.Text)
	if err != nil {
		msg := err.Error()
		return result{Error: &msg, Phase: "parse"}
	}
	var data interface{}
	if len(c.Data) > 0 && c.Iter8 {
		if err := json.Unmarshal(c.Data, &data); err != nil {
			msg := "bad data: " + err.Error()
			return result{Error: &msg, Phase: "data"}
		}
		if m, ok := data.(map[string]interface{}); ok {
			if f, ok := m["elapsedTimeSeconds"].(float64); ok {
				m["elapsedTimeSeconds"] = int64(f)
			}
		}
	} else if len(c.Data) > 0 {
		dec := json.NewDecoder(bytes.NewReader(c.Data))
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil {
			msg := "bad data: " + err.Error()
			return result{Error: &msg, Phase: "data"}
		}
		data = convert(data)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		msg := err.Error()
		return result{Error: &msg, Phase: "exec"}
	}
	out := buf.String()
	return result{Out: &out}
}

func main() {
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintln(os.Stderr, "oracle: bad input:", err)
		os.Exit(2)
	}
	results := make([]result, len(cases))
	for i, c := range cases {
		results[i] = run(c)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, "oracle:", err)
		os.Exit(2)
	}
}
