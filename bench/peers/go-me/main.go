// The same `GET /api/me` as TodosAPI, written the usual Go way: net/http and golang-jwt v4, the issuer's keys read
// from its JWKS and kept by `kid` (fetched again, at most every 30 s, when a token names a key not seen yet).
//
// Run by `make bench` as a peer; configured by ISSUER, AUDIENCE, JWKS_URL and PORT.
package main

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

type keySet struct {
	url     string
	mu      sync.RWMutex
	keys    map[string]*rsa.PublicKey
	fetched time.Time
}

func (s *keySet) refresh() error {
	response, err := http.Get(s.url)
	if err != nil {
		return err
	}
	defer response.Body.Close()
	var document struct {
		Keys []struct {
			Kty, Kid, Use, N, E string
		} `json:"keys"`
	}
	if err := json.NewDecoder(response.Body).Decode(&document); err != nil {
		return err
	}
	keys := map[string]*rsa.PublicKey{}
	for _, key := range document.Keys {
		if key.Kty != "RSA" || (key.Use != "" && key.Use != "sig") {
			continue
		}
		n, errN := base64.RawURLEncoding.DecodeString(key.N)
		e, errE := base64.RawURLEncoding.DecodeString(key.E)
		if errN != nil || errE != nil {
			continue
		}
		keys[key.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	s.mu.Lock()
	s.keys, s.fetched = keys, time.Now()
	s.mu.Unlock()
	return nil
}

func (s *keySet) key(token *jwt.Token) (interface{}, error) {
	kid, _ := token.Header["kid"].(string)
	s.mu.RLock()
	key, fetched := s.keys[kid], s.fetched
	s.mu.RUnlock()
	if key == nil && time.Since(fetched) > 30*time.Second {
		if err := s.refresh(); err != nil {
			return nil, err
		}
		s.mu.RLock()
		key = s.keys[kid]
		s.mu.RUnlock()
	}
	if key == nil {
		return nil, errors.New("no key for this kid")
	}
	return key, nil
}

func main() {
	issuer, audience := os.Getenv("ISSUER"), os.Getenv("AUDIENCE")
	keys := &keySet{url: os.Getenv("JWKS_URL")}
	if err := keys.refresh(); err != nil {
		log.Fatalf("JWKS: %v", err)
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithJSONNumber())

	http.HandleFunc("/api/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	})
	http.HandleFunc("/api/me", func(w http.ResponseWriter, r *http.Request) {
		scheme, raw, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || raw == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="todos-api"`)
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		claims := jwt.MapClaims{}
		_, err := parser.ParseWithClaims(raw, claims, keys.key)
		if err == nil && !claims.VerifyIssuer(issuer, true) {
			err = errors.New("wrong issuer")
		}
		if err == nil && !claims.VerifyAudience(audience, true) {
			err = errors.New("wrong audience")
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="invalid_token", error_description=%q`, err.Error()))
			http.Error(w, `{"error":"invalid_token"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(claims)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil))
}
