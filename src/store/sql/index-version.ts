/**
 * What the index rows hold changes now and then (composite parameters, full text, Soundex, blind
 * indexes of sensitive identifiers): a store indexed before this version is indexed again before
 * it serves (both stores record the version their rows are at).
 */
export const indexVersion = 7;
