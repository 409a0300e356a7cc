/**
 * The Nexmark data model (an online auction): people register, open auctions and bid.
 * Field names follow the Nexmark benchmark's; times are milliseconds since the epoch.
 */
export interface Person {
  id: number;
  name: string;
  emailAddress: string;
  creditCard: string;
  city: string;
  state: string;
  dateTime: number;
  extra: string;
}

export interface Auction {
  id: number;
  itemName: string;
  description: string;
  initialBid: number;
  reserve: number;
  dateTime: number;
  expires: number;
  seller: number;
  category: number;
  extra: string;
}

export interface Bid {
  auction: number;
  bidder: number;
  price: number;
  channel: string;
  url: string;
  dateTime: number;
  extra: string;
}

/** One generated event: exactly one of person, auction, bid, named by `type`. */
export type NexmarkEvent =
  { type: 'person'; person: Person } | { type: 'auction'; auction: Auction } | { type: 'bid'; bid: Bid };

/** The event time of a Nexmark event, for a timestamp assigner. */
export function nexmarkEventTime(event: NexmarkEvent): number {
  switch (event.type) {
    case 'person':
      return event.person.dateTime;
    case 'auction':
      return event.auction.dateTime;
    case 'bid':
      return event.bid.dateTime;
  }
}
