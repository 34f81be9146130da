// TSIG vectors captured once from BIND's nsupdate 9.18 talking to Knot DNS 3.2 (through a UDP relay that
// printed both directions), with the key below: requests signed by nsupdate, responses signed by knotd. The
// key was made for this capture only.
const hex = (text: string) => Buffer.from(text, "hex");

export const vectorKey = {
  name: "tandem-key",
  /** Test data, not a credential. */
  secret: Buffer.from("5+AmNID/kWxgZ+BwAPhDl2C6nCWUkOf0eJw16uSQeKk=", "base64"),
};

export const nsupdateVectors = {
  /** "update delete web.example.com. A", "update add web.example.com. 30 A 192.0.2.1": NOERROR. */
  sha256: {
    timeSigned: 0x6b16147e,
    request: hex(
      "a33b28000001000000020001076578616d706c6503636f6d000006000103776562c00c000100ff000000000000c01d00" +
        "0100010000001e0004c00002010a74616e64656d2d6b65790000fa00ff00000000003d0b686d61632d73686132353600" +
        "00006b16147e012c002070436908742c8ee389c9caf9e58b2f40b33856283f0422d075fe4bc5b1f3f105a33b00000000",
    ),
    response: hex(
      "a33ba8000001000000000001076578616d706c6503636f6d00000600010a74616e64656d2d6b65790000fa00ff000000" +
        "00003d0b686d61632d7368613235360000006b16147e012c00208d2b4ce6ba7cdf8c58f9192d1ebacf33a52f2e773f89" +
        "e1a843019e2858df8da6a33b00000000",
    ),
  },
  /** "update delete web.example.com. AAAA", "update add ... 60 AAAA 2001:db8::1": Knot's key is
   * hmac-sha256, so it answers NOTAUTH with TSIG error BADKEY, unsigned. */
  sha512: {
    timeSigned: 0x6b161481,
    request: hex(
      "a5fd28000001000000020001076578616d706c6503636f6d000006000103776562c00c001c00ff000000000000c01d00" +
        "1c00010000003c001020010db80000000000000000000000010a74616e64656d2d6b65790000fa00ff00000000005d0b" +
        "686d61632d7368613531320000006b161481012c004055e3757891f199cb4360e6f3fffa8cdf446e1732d2450a5b7047" +
        "b8ac4e056eb424f175402d512e04507d60a813a425dc6b7b818f0a637852c6388c12b62656f9a5fd00000000",
    ),
    badKeyResponse: hex(
      "a5fda8090001000000000001076578616d706c6503636f6d00000600010a74616e64656d2d6b65790000fa00ff000000" +
        "00001d0b686d61632d7368613531320000006b161481012c0000a5fd00110000",
    ),
  },
  /** "update delete web.example.com. A" signed with a wrong secret (all zero bytes): NOTAUTH, BADSIG. */
  wrongSecret: {
    timeSigned: 0x6b161482,
    secret: Buffer.alloc(32),
    request: hex(
      "3fb428000001000000010001076578616d706c6503636f6d000006000103776562c00c000100ff0000000000000a7461" +
        "6e64656d2d6b65790000fa00ff00000000003d0b686d61632d7368613235360000006b161482012c00207a499f78e4a6" +
        "78eed2853873b5fffeb23752e00825b76aa43b08924fe98eaf9a3fb400000000",
    ),
    badSigResponse: hex(
      "3fb4a8090001000000000001076578616d706c6503636f6d00000600010a74616e64656d2d6b65790000fa00ff000000" +
        "00001d0b686d61632d7368613235360000006b161482012c00003fb400100000",
    ),
  },
  /** "update delete web.example.com. A 192.0.2.1" (class NONE), hmac-sha1: answered BADKEY. */
  sha1: {
    timeSigned: 0x6b161495,
    request: hex(
      "b98928000001000000010001076578616d706c6503636f6d000006000103776562c00c000100fe000000000004c00002" +
        "010a74616e64656d2d6b65790000fa00ff00000000002f09686d61632d736861310000006b161495012c0014be915f85" +
        "15f905725ca8eb6bf677e045b44cfa76b98900000000",
    ),
  },
};
