package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// NewSecret returns a client secret: 32 random bytes, base64url without
// padding (43 characters). Show it once; store only HashSecret of it.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: random secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// HashSecret is the hex SHA-256 of a secret, the form stored in the
// database.
//
// A fast hash is right here because Ward generates these secrets with 256
// bits of entropy: a leaked hash cannot be brute-forced at any speed, so a
// slow KDF (bcrypt, argon2) would only add tens of milliseconds to every
// token request and hand attackers a cheap CPU-exhaustion lever. Slow KDFs
// exist for human-chosen passwords, whose small search space is what they
// defend; those must not go through this function.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// SecretMatches reports whether secret hashes to hash, in constant time so
// response timing does not reveal how much of a guess was right.
func SecretMatches(secret, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(HashSecret(secret)), []byte(hash)) == 1
}
