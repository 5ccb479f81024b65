"""Common short forms of given names, for the names Faker's locales produce most often."""

from __future__ import annotations

_TABLE = """
Abigail: Abby, Gail
Alexander: Alex, Xander, Sasha
Alexandra: Alex, Sandra, Lexi
Alexandre: Alex
Alfred: Alf, Fred
Andrew: Andy, Drew
Anthony: Tony
Antonio: Toño, Toni
Barbara: Barb, Babs
Benjamin: Ben, Benny
Catherine: Cathy, Kate, Cat
Charles: Charlie, Chuck
Christina: Chris, Tina
Christine: Chris, Tina
Christopher: Chris, Kit
Christophe: Chris
Cornelis: Kees
Daniel: Dan, Danny
David: Dave
Deborah: Deb, Debbie
Donald: Don
Dolores: Lola
Dorothy: Dot, Dottie
Douglas: Doug
Edward: Ed, Eddie, Ted
Elizabeth: Liz, Beth, Betty, Eliza, Lizzie
Elisabeth: Lisa, Elli, Sabine
Emily: Em, Emmy
Francisco: Paco, Curro
Frederick: Fred, Freddie
Frédéric: Fred
Friedrich: Fritz
Gerald: Gerry, Jerry
Gregory: Greg
Guadalupe: Lupe
Harold: Harry, Hal
Hendrik: Henk
Henry: Harry, Hank
Ignacio: Nacho
Jacqueline: Jackie
James: Jim, Jimmy, Jamie
Jennifer: Jen, Jenny
Jessica: Jess, Jessie
Johannes: Hans, Jan
John: Jack, Johnny
Jonathan: Jon
José: Pepe
Joseph: Joe, Joey
Joshua: Josh
Judith: Judy
Katharina: Kathi, Katja
Katherine: Kate, Kathy, Katie
Kathryn: Kate, Kathy
Kenneth: Ken, Kenny
Kimberly: Kim
Lawrence: Larry
Margaret: Maggie, Meg, Peggy
Manuel: Manolo
Matthew: Matt
Maximilian: Max
Michael: Mike, Mikey
Nathaniel: Nate, Nathan
Nicholas: Nick, Nicky
Nicolas: Nico
Pamela: Pam
Patricia: Pat, Patty, Trish
Peter: Pete
Rebecca: Becky, Becca
Richard: Rick, Dick, Rich
Robert: Bob, Rob, Bobby
Ronald: Ron, Ronnie
Samantha: Sam, Sammy
Samuel: Sam
Stephen: Steve
Steven: Steve
Susan: Sue, Susie
Theresa: Terri, Tess
Thomas: Tom, Tommy
Timothy: Tim
Valerie: Val
Victoria: Vicky, Tori
Wilhelm: Willi
William: Bill, Will, Billy, Liam
Wolfgang: Wolf
Zachary: Zach
"""

NICKNAMES: dict[str, tuple[str, ...]] = {
    name.strip(): tuple(n.strip() for n in short.split(","))
    for name, _, short in (line.partition(":") for line in _TABLE.strip().splitlines())
}
